"""`python -m shared.replay TOPIC [--dry-run]`: publish dead-lettered events to their topic again.

Use it after fixing the handler that dead-lettered them (the `hearth-error` header says why): each
record of `TOPIC.dlq` is published once to `TOPIC` with its key, so per-aggregate order follows the
replay order; consumers that had applied an event already skip it (dedupe by event id). Progress is
kept as the offsets of the consumer group `hearth.replay` on the dead-letter topic, so a second run
replays only what was dead-lettered since. `--dry-run` lists and changes nothing.
"""

import argparse
import asyncio
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.config import HearthSettings
from shared.events import Envelope
from shared.kafka import DLQ_SUFFIX, make_producer

REPLAY_GROUP = "hearth.replay"


def _describe(record) -> str:
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    try:
        envelope = Envelope.from_bytes(record.value)
        what = f"{envelope.type} {envelope.id}"
    except ValueError:
        what = "undecodable record"
    return (f"{record.topic}:{record.partition}:{record.offset} {what} consumer={headers.get('hearth-consumer')} "
            f"attempts={headers.get('hearth-attempts')} error={headers.get('hearth-error')}")


async def replay(topic: str, *, bootstrap: str, dry_run: bool, out=sys.stdout) -> int:
    """Replay (or list) what is in `topic`.dlq past the replay group's committed offsets."""
    dlq = topic + DLQ_SUFFIX
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=REPLAY_GROUP, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    producer = None if dry_run else make_producer(HearthSettings(kafka_bootstrap=bootstrap))
    try:
        await consumer.topics()  # loads metadata, so the dead-letter topic's partitions are known
        partitions = [TopicPartition(dlq, p) for p in sorted(consumer.partitions_for_topic(dlq) or ())]
        consumer.assign(partitions)
        if producer:
            await producer.start()
        count = 0
        for tp in partitions:
            # Read to the high-water mark the fetches report (a broker's ListOffsets may lag behind).
            while True:
                records = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
                if not records:
                    high = consumer.highwater(tp)
                    if high is None or await consumer.position(tp) >= high:
                        break
                    continue
                for record in records:
                    print(("would replay " if dry_run else "replayed ") + _describe(record), file=out)
                    if producer:
                        await producer.send_and_wait(topic, value=record.value, key=record.key)
                    count += 1
                if not dry_run:
                    await consumer.commit({tp: records[-1].offset + 1})
        print(f"{count} dead-lettered event(s) {'to replay' if dry_run else 'replayed'} from {dlq}", file=out)
        return count
    finally:
        await consumer.stop()
        if producer:
            await producer.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.replay", description=__doc__.split("\n")[0])
    parser.add_argument("topic", help="the topic whose dead letters to replay, e.g. social.v1")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    parser.add_argument("--bootstrap", default=None, help="broker address (default: HEARTH_KAFKA_BOOTSTRAP)")
    args = parser.parse_args()
    bootstrap = args.bootstrap or HearthSettings().kafka_bootstrap
    asyncio.run(replay(args.topic, bootstrap=bootstrap, dry_run=args.dry_run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
