"""`python -m services.analytics.recompute --from 2026-11-01 --to 2026-11-25`: rebuild rollups from the log.

`--to` is exclusive (UTC days, like every analytics window)."""

import argparse
import asyncio
from datetime import date

from tqdm import tqdm

from services.analytics.config import Settings
from services.analytics.ingest.recompute import count_events, recompute
from shared.db import make_engine, make_sessionmaker


async def main(start: date, end: date) -> int:
    settings = Settings()
    engine = make_engine(settings.service_database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine, service="analytics")() as session, session.begin():
            total = await count_events(session, start, end)
            with tqdm(total=total, unit="event", desc=f"recompute {start}..{end}") as bar:
                done = await recompute(session, start=start, end=end, progress=bar.update)
        return done
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    args = parser.parse_args()
    if args.end <= args.start:
        parser.error("--to must be after --from")
    print(f"replayed {asyncio.run(main(args.start, args.end))} events")
