"""An outbox relay in a process of its own, so a test can freeze it (SIGSTOP) like a hung replica.

python -m tests.shared.relay_process DSN BOOTSTRAP SOCIAL_TOPIC LEASE_SECONDS
"""

import asyncio
import signal
import sys

from shared.config import HearthSettings
from shared.kafka import make_producer, topic_map
from shared.outbox import OutboxRelay


async def main(dsn: str, bootstrap: str, topic: str, lease: float) -> None:
    settings = HearthSettings(kafka_bootstrap=bootstrap, topic_social=topic)
    relay = OutboxRelay(dsn=dsn, service="scratch", producer_factory=lambda: make_producer(settings),
                        topic_map=topic_map(settings), lease_seconds=lease)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await relay.run(stop)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
