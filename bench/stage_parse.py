"""Benchmark: the pipeline's own share of ingest, parsing pages, and which route wins.

Generates the simulator's recordings for two weekdays in memory (pages of 1,000, as
the API serves them to the pipeline), then times, over the same pages, without HTTP
or page generation in the figures:

- the route the pipeline takes: the client reads each page's cursor with a scan of the
  page's tail (`list_page_cursor`) and DuckDB parses the page once into the stage
  (`RecordingsStage.add_pages`: typed columns, lost-value guard, insert);
- the parses it does not do: Python's `json.loads` of every page (what the client did
  before, for the cursor and the `createdAt` order) and `orjson.loads` where installed.

Prints CPU time (all DuckDB threads), which a busy machine disturbs far less than wall
time. Not run by pytest.

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

from siro_assets.api_client.shapes import list_page_cursor  # noqa: E402
from siro_assets.simulator import World, WorldConfig  # noqa: E402
from siro_assets.warehouse.staging import RecordingsStage  # noqa: E402


def main() -> None:
    per_day = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    first = date(2026, 3, 2)  # a Monday
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    records = World(WorldConfig(recordings_per_day=per_day)).recordings(
        datetime(2026, 3, 20, tzinfo=timezone.utc), created_from=start, created_to=start + timedelta(days=2)
    )
    pages = [
        json.dumps({"data": records[i : i + 1000], "cursor": "x" * 80}, separators=(",", ":")).encode()
        for i in range(0, len(records), 1000)
    ]
    n = len(records)
    print(f"{n} recordings, {sum(map(len, pages)) / 2**20:.1f} MiB in {len(pages)} pages")

    def stage_all() -> None:
        with RecordingsStage() as stage:
            for body in pages:
                stage.add_pages([body])

    _line("pipeline: cursor scan of the page tail", n, lambda: [list_page_cursor(body) for body in pages])
    _line("pipeline: DuckDB's one parse into the stage", n, stage_all)
    _line("not done: Python json.loads of every page", n, lambda: [json.loads(body) for body in pages])
    try:
        import orjson
    except ImportError:
        print("orjson not installed (pip install -e '.[bench]' brings it with dlt)")
    else:
        _line("not done: orjson.loads of every page", n, lambda: [orjson.loads(body) for body in pages])


def _line(what: str, n: int, work) -> None:
    timings = []
    for _ in range(5):
        cpu, wall = time.process_time(), time.perf_counter()
        work()
        timings.append((time.process_time() - cpu, time.perf_counter() - wall))
    cpu, wall = min(timings)
    print(f"{what}, best of 5: CPU {cpu:.2f} s = {cpu / n * 1e6:.1f} us/recording; wall {wall:.2f} s")


if __name__ == "__main__":
    main()
