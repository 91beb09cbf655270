"""CRM first-delivery benchmark: peak RSS of the first delivery over a year of history.

Fills `siro.crm_writeback_plan` with N ready plan rows (N/4 records x 4 fields, spread
over 365 days; 1,000,000 by default) straight in SQL, then runs the first delivery (every
field due) to the outbox, each mode in a fresh process so its peak RSS is its own:

- `paged`: the delivery as shipped (due fields queued in DuckDB, read back a page of
  `PAGE_RECORDS` records at a time);
- `one page`: the same code with one page holding every record, which is what loading all
  candidates at once (`fetchall()`) cost before.

Bounded memory means the `paged` figure does not grow with N.

    .venv/bin/python bench/crm_first_delivery.py [--quick]    # --quick: 100,000 plan rows

Not a test (pytest does not collect `bench/`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import machine, peak_rss_mib, quick_mode  # noqa: E402

FIELDS = ("Note", "Count", "Flag", "Day")

_FILL = """
INSERT INTO siro.crm_writeback_plan
SELECT DATE '2025-03-01' + CAST(r % 365 AS INTEGER), 'rec' || r,
       TIMESTAMPTZ '2025-03-01 09:00:00+00' + to_seconds(r), f, 0, 'x' || f, 'Deal', fields[f + 1],
       'opportunity', 0, 'ic_out', 'o' || r, 's' || r,
       to_json('value ' || r || ' ' || f), 'value ' || r || ' ' || f, 'string', 'ready', md5('k' || r || ':' || f)
FROM range(?) AS t(r), range(4) AS u(f), (SELECT ?::VARCHAR[] AS fields)
"""


def seed(path: Path, rows: int) -> None:
    from siro_assets.crm import ensure_ledger
    from siro_assets.warehouse.connection import duckdb_connection

    with duckdb_connection(path) as con:
        ensure_ledger(con)
        con.execute(_FILL, [rows // 4, list(FIELDS)])
        # The live recordings the targets join to.
        con.execute("""INSERT INTO siro.recordings (id, created_at, payload, partition_date, ingested_at, deleted)
                       SELECT DISTINCT recording_id, recording_created_at, '{}', partition_date, now(), FALSE
                       FROM siro.crm_writeback_plan""")


def deliver(path: str, page_records: int) -> None:
    """One delivery in this process; prints its figures as JSON."""
    import contextlib

    from siro_assets.crm import Delivery, Routing
    from siro_assets.crm.config import OutboxSettings
    from siro_assets.warehouse.connection import open_duckdb

    @contextlib.contextmanager
    def connect():
        con = open_duckdb(path)
        try:
            yield con
        finally:
            con.close()

    at_start = peak_rss_mib()
    started = time.perf_counter()
    report = Delivery(connect, Routing(connections={"*": OutboxSettings()}), run_id="bench",
                      page_records=page_records).run()
    print(json.dumps({"delivered": report.delivered, "seconds": time.perf_counter() - started,
                      "rss_at_start_mib": at_start, "peak_rss_mib": peak_rss_mib()}))


def main() -> None:
    from siro_assets.crm.delivery import PAGE_RECORDS

    rows = 100_000 if quick_mode() else 1_000_000
    print(f"# crm first delivery: {rows:,} ready plan rows ({rows // 4:,} records x 4 fields, 365 days)\n# {machine()}")
    for label, page in (("paged", PAGE_RECORDS), ("one page", rows)):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.duckdb"
            seed(path, rows)
            out = subprocess.run([sys.executable, __file__, "--deliver", str(path), str(page)],
                                 check=True, capture_output=True, text=True).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            print(f"{label} ({page:,} records a page): delivered {figures['delivered']:,} in "
                  f"{figures['seconds']:.1f} s; peak RSS {figures['peak_rss_mib']:.0f} MiB "
                  f"({figures['rss_at_start_mib']:.0f} MiB after imports)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--deliver"]:
        deliver(sys.argv[2], int(sys.argv[3]))
    else:
        main()
