"""CRM delivery benchmark: fields per second through each sink, and the ledger's share.

Builds a plan of N CRM fields (N/4 records x 4 fields) in a DuckDB file, delivers them
to the in-process fake Salesforce, HubSpot and generic CRM (no network, no pacing, no
faults) and to the outbox, then runs again (everything unchanged) to time the ledger
comparison alone.

    .venv/bin/python bench/crm_delivery.py [fields]

`--first-delivery [--quick]` instead measures the first delivery over a large plan
(1,000,000 plan rows; `--quick`: 20,000; or `--rows=N`) to the outbox, with peak RSS: ours, and the
code before due fields were paged and unchanged fields counted (`git archive` of the
commit before that change), each in a fresh child process on its own copy of the same
warehouse file, printed side by side.

Not a test (pytest does not collect `bench/`).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siro_assets.crm import Delivery, Routing  # noqa: E402
from siro_assets.crm.config import HttpSettings, HubSpotSettings, OutboxSettings, SalesforceSettings  # noqa: E402
from siro_assets.crm.sinks import SinkFactory  # noqa: E402
from fake_crms import (  # noqa: E402
    FakeCrms, FakeCrmTransport, FakeHttpCrm, FakeHubSpot, FakeSalesforce, SteppingClock,
)
from siro_assets.transforms import CRM_WRITEBACK_PLAN, rebuild_partitions  # noqa: E402
from siro_assets.warehouse.connection import open_duckdb  # noqa: E402
from tests.crm_support import START, crm_block, extraction  # noqa: E402
from tests.raw_payloads import load_raw, recording  # noqa: E402

DAY = date(2026, 1, 5)
FIELDS = {"ic_sf": ["Note__c", "Count__c", "Flag__c", "Day__c"], "ic_hs": ["note", "count", "flag", "day"],
          "ic_http": ["Note", "Count", "Flag", "Day"], "ic_out": ["Note", "Count", "Flag", "Day"]}


def records_for(connection: str, n_records: int) -> list[dict]:
    out = []
    for n in range(n_records):
        rid = f"006{n:012d}AAA" if connection == "ic_sf" else f"{connection}-{n}"
        names = FIELDS[connection]
        out.append(recording(f"{connection}-rec{n}", DAY, crm=crm_block(connection, opportunity=rid), entityExtractions=[
            extraction(f"note {n}", ("Opportunity", names[0]), name="a"),
            extraction(n, ("Opportunity", names[1]), name="b"),
            extraction(n % 2 == 0, ("Opportunity", names[2]), name="c"),
            extraction("2026-02-03", ("Opportunity", names[3]), name="d"),
        ]))
    return out


def connector(path: Path):
    """What `Delivery` takes: a fresh connection to `path` per ledger read or write, closed after."""
    return lambda: contextlib.closing(open_duckdb(path))


def main() -> None:
    fields = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    clock = SteppingClock(START)
    base = "http://fake-crm"
    transport = FakeCrmTransport(FakeCrms(FakeSalesforce(clock), FakeHubSpot(clock, requests_per_window=10**9),
                                          FakeHttpCrm(clock)))
    routing = Routing(connections={
        "ic_sf": SalesforceSettings(login_url=f"{base}/salesforce", client_id="fake-client-id",
                                    client_secret="fake-client-secret"),
        "ic_hs": HubSpotSettings(base_url=f"{base}/hubspot", token="fake-hubspot-token", requests_per_second=1e9),
        "ic_http": HttpSettings(url=f"{base}/http", token="fake-http-token"),
        "*": OutboxSettings(),
    })
    with tempfile.TemporaryDirectory() as tmp:
        connect = connector(Path(tmp) / "bench.duckdb")
        per_sink = fields // 4 // len(FIELDS)
        with connect() as con:
            load_raw(con, [r for c in FIELDS for r in records_for(c, per_sink)], [DAY])
            rebuild_partitions(con, CRM_WRITEBACK_PLAN, [DAY])
        for label in ("first run (everything due)", "second run (everything unchanged)"):
            factory = SinkFactory(connect, run_id=label, transport=transport, sleep=clock.sleep, clock=clock.monotonic)
            started = time.perf_counter()
            report = Delivery(connect, routing, run_id=label, sinks=factory).run([DAY])
            elapsed = time.perf_counter() - started
            total = report.delivered + report.unchanged
            print(f"{label}: {total} fields in {elapsed:.1f} s ({total / elapsed:,.0f} fields/s); "
                  f"delivered {report.delivered}, unchanged {report.unchanged}, API calls {report.api_calls}")


# The plan, written in SQL (building a million recordings' payloads in Python would
# dwarf what is measured): one live recording per CRM record, four fields each, over a year.
_PLAN_SQL = """
INSERT INTO siro.crm_writeback_plan
SELECT DATE '2025-01-01' + (n // 4 % 365)::INTEGER, 'rec' || (n // 4),
       TIMESTAMPTZ '2025-01-01 09:00:00+00' + to_days((n // 4 % 365)::INTEGER), n % 4, 0, 'x' || (n % 4),
       'Opportunity', 'Field' || (n % 4) || '__c', 'opportunity', 0, 'ic_out', 'opp' || (n // 4), NULL,
       to_json('value ' || n), 'value ' || n, 'VARCHAR', 'ready', md5(n::VARCHAR)
FROM range($rows) AS t(n)
"""
_RECORDINGS_SQL = """
INSERT INTO siro.recordings (id, created_at, payload, partition_date, ingested_at)
SELECT 'rec' || r, TIMESTAMPTZ '2025-01-01 09:00:00+00' + to_days((r % 365)::INTEGER), '{}',
       DATE '2025-01-01' + (r % 365)::INTEGER, now()
FROM range($records) AS t(r)
"""

_CHILD = """
import contextlib, json, resource, sys, time
from siro_assets.crm import Delivery, Routing
from siro_assets.crm.config import OutboxSettings
from siro_assets.warehouse.connection import open_duckdb

# The child runs either tree's package, so it cannot import `connector` from this file.
connect = lambda: contextlib.closing(open_duckdb(sys.argv[1]))
started = time.perf_counter()
report = Delivery(connect, Routing(connections={"*": OutboxSettings()}), run_id="bench").run(None)
print(json.dumps({"seconds": time.perf_counter() - started, "delivered": report.delivered,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _old_tree(tmp: Path) -> tuple[Path, str]:
    """The package as it was before due fields were paged: the parent of the oldest commit
    that added the delivery lease (`crm/lease.py`), which came with the paging.

    Not "the commit before `read_candidates` went": several branches changed it, and the
    newest of them is not the code before the change (its lease table has another shape)."""
    import subprocess

    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "siro_assets/crm/lease.py"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    commit = f"{added[-1]}^" if added else "HEAD"
    tree = tmp / "old"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", commit, "siro_assets", "fake_crms"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    short = subprocess.run(["git", "rev-parse", "--short", commit], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    return tree, short


def first_delivery() -> None:
    """The first delivery over `rows` plan rows, ours against the old code, peak RSS of each."""
    import json
    import os
    import shutil
    import subprocess

    from bench.harness import machine, quick_mode
    from siro_assets.crm import ensure_ledger

    asked = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--rows=")]
    rows = int(asked[0]) if asked else 20_000 if quick_mode() else 1_000_000
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "plan.duckdb"
        with connector(base)() as con:
            ensure_ledger(con)
            con.execute(_RECORDINGS_SQL, {"records": rows // 4})
            con.execute(_PLAN_SQL, {"rows": rows})
        old, commit = _old_tree(tmp)
        results = {}
        for label, tree in (("ours", ROOT), (f"old ({commit})", old)):
            copy = tmp / f"{len(results)}.duckdb"
            shutil.copy(base, copy)
            done = subprocess.run([sys.executable, "-c", _CHILD, str(copy)], cwd=tmp, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(tree)})
            if done.returncode != 0:
                raise SystemExit(f"{label} failed: {done.stderr[-2000:]}")
            results[label] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"first delivery over {rows:,} plan rows ({rows:,} CRM fields, {rows // 4:,} records) to the outbox:")
    print(f"{'':<16}{'delivered':>12}{'seconds':>10}{'fields/s':>12}{'peak RSS MiB':>14}")
    for label, r in results.items():
        print(f"{label:<16}{r['delivered']:>12,}{r['seconds']:>10.1f}{r['delivered'] / r['seconds']:>12,.0f}"
              f"{r['peak_rss_mib']:>14.0f}")


if __name__ == "__main__":
    if "--first-delivery" in sys.argv[1:]:
        first_delivery()
    else:
        main()
