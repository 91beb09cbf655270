"""Benchmark: the pipeline's own share of ingest, parsing pages into the stage.

Generates the simulator's recordings for two weekdays in memory, then times
`RecordingsStage.add_page` over the same pages (typed columns plus the lost-value
guard), without HTTP or page generation in the figure. Prints CPU time (all DuckDB
threads), which a busy machine disturbs far less than wall time. Not run by pytest.

    .venv/bin/python bench/stage_parse.py [recordings_per_day]
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from siro_assets.simulator import World, WorldConfig  # noqa: E402
from siro_assets.warehouse.staging import RecordingsStage  # noqa: E402


def main() -> None:
    per_day = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    first = date(2026, 3, 2)  # a Monday
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    records = World(WorldConfig(recordings_per_day=per_day)).recordings(
        datetime(2026, 3, 20, tzinfo=timezone.utc), created_from=start, created_to=start + timedelta(days=2)
    )
    pages = [json.dumps({"data": records[i : i + 500], "cursor": None}) for i in range(0, len(records), 500)]
    timings = []
    for _ in range(5):
        with RecordingsStage() as stage:
            cpu, wall = time.process_time(), time.perf_counter()
            for body in pages:
                stage.add_page(body, window_start=first)
            timings.append((time.process_time() - cpu, time.perf_counter() - wall))
    cpu, wall = min(timings)
    n = len(records)
    print(f"{n} recordings, {sum(map(len, pages)) / 2**20:.1f} MiB in {len(pages)} pages")
    print(f"parse into the stage (typed columns + lost-value guard), best of 5: "
          f"CPU {cpu:.2f} s = {cpu / n * 1e6:.0f} us/recording; wall {wall:.2f} s")


if __name__ == "__main__":
    main()
