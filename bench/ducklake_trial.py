"""Trial: the warehouse on DuckLake (PostgreSQL catalog, Parquet data files) with our SQL.

Answers "what replaces one DuckDB file, keeping our SQL" as far as this machine allows:
starts a throwaway PostgreSQL cluster (as tests/deploy does), attaches a DuckLake whose
catalog lives in it and whose data files go to a local directory (object storage in
production), then runs the pipeline's own code on it: `ensure_schema`, the staging path
(`RecordingsStage` + `swap_partitions`) with simulated recordings, and every derived
table's `rebuild_partitions`. It compares each table with the same steps on a plain
DuckDB file, and finally has two processes swap different days in at the same time (the
multi-writer case one DuckDB file cannot serve).

DuckDB extensions are built for one DuckDB version, PyPI packages the ducklake and
postgres_scanner extensions only up to 1.5.5, and `INSTALL ducklake` needs
extensions.duckdb.org, which these machines cannot reach. The project therefore pins DuckDB
1.5.5 and installs the extension wheels with its `ducklake` extra:

    pip install -e '.[ducklake]'
    python bench/ducklake_trial.py [--days 3] [--per-day 400]

Not a test (pytest does not collect bench/); it prints what worked and the timings.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from siro_assets.simulator import World, WorldConfig  # noqa: E402
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions  # noqa: E402
from siro_assets.warehouse.connection import DEFAULT_SCHEMA, use_schema  # noqa: E402
from siro_assets.warehouse.schema import ensure_schema  # noqa: E402
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions  # noqa: E402
from tests.deploy.postgres_cluster import find_postgres_bin, running_cluster  # noqa: E402

# json and parquet are built into the duckdb wheel; these two come from the `ducklake` extra.
EXTENSIONS = ("postgres_scanner", "ducklake")
NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)


def load_packaged_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD the extensions shipped by the duckdb-extension-* wheels for this DuckDB version."""
    for name in EXTENSIONS:
        package = importlib.import_module(f"duckdb_extension_{name}")
        (path,) = Path(package.__path__[0]).glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension")
        con.execute(f"LOAD '{path}'")


def lake_connection(dsn: str, data_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    load_packaged_extensions(con)
    con.execute(f"ATTACH 'ducklake:postgres:{dsn}' AS lake (DATA_PATH '{data_path}/')")
    con.execute("USE lake")
    return con


def stage_and_swap(con: duckdb.DuckDBPyConnection, world: World, days: list[date], stage_dir: Path) -> int:
    """The raw asset's write path, with the simulated world as the API."""
    records = world.recordings(
        NOW, created_from=datetime.combine(days[0], datetime.min.time(), timezone.utc),
        created_to=datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), timezone.utc),
    )
    with RecordingsStage(directory=stage_dir) as stage:
        for start in range(0, len(records), 100):  # API-sized pages, as the raw asset stages them
            stage.add_page(json.dumps({"data": records[start:start + 100], "cursor": None}))
        stage.finalize(days)
        return swap_partitions(con, stage, days)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    names = ["recordings", *(t.name for t in DERIVED_TABLES)]
    return {n: con.execute(f"SELECT count(*) FROM siro.{n}").fetchone()[0] for n in names}


def _writer(dsn: str, data_path: str, day: str, per_day: int, stage_dir: str, out) -> None:
    con = lake_connection(dsn, Path(data_path))
    world = World(WorldConfig(recordings_per_day=per_day))
    started = time.monotonic()
    for attempt in range(1, 6):
        try:
            rows = stage_and_swap(con, world, [date.fromisoformat(day)], Path(stage_dir))
            out.put((day, rows, attempt, round(time.monotonic() - started, 2), None))
            return
        except duckdb.Error as exc:  # a concurrent commit conflicted: DuckLake asks to retry
            error = str(exc).splitlines()[0]
            time.sleep(0.2 * attempt)
    out.put((day, 0, attempt, round(time.monotonic() - started, 2), error))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--per-day", type=int, default=400)
    args = ap.parse_args()
    print(f"duckdb {duckdb.__version__}")
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (apt-get install postgresql)")
    days = [date(2026, 3, 2) + timedelta(days=k) for k in range(args.days)]
    world = World(WorldConfig(recordings_per_day=args.per_day))
    with tempfile.TemporaryDirectory() as tmp, running_cluster(bin_dir, database="lake") as pg:
        tmp = Path(tmp)
        dsn = f"host={pg.host} port={pg.port} user={pg.user} password={pg.password} dbname={pg.database}"
        (tmp / "stage").mkdir()
        results = {}
        for label, con in (
            ("duckdb file", duckdb.connect(str(tmp / "plain.duckdb"))),
            ("ducklake", lake_connection(dsn, tmp / "lake_data")),
        ):
            timings = {}
            started = time.monotonic()
            use_schema(con, DEFAULT_SCHEMA, create=True)  # as every warehouse connection does
            ensure_schema(con)
            timings["ensure_schema"] = time.monotonic() - started
            started = time.monotonic()
            stage_and_swap(con, world, days, tmp / "stage")
            timings["stage+swap"] = time.monotonic() - started
            started = time.monotonic()
            for table in DERIVED_TABLES:
                rebuild_partitions(con, table, days)
            timings["derived tables"] = time.monotonic() - started
            results[label] = table_counts(con)
            print(f"{label}: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
            con.close()
        con = duckdb.connect(str(tmp / "plain.duckdb"))
        con.execute("CHECKPOINT")
        con.close()
        size = (tmp / "plain.duckdb").stat().st_size / 2**20
        rows = results["duckdb file"]["recordings"]
        print(f"duckdb file: {size:.1f} MiB for {rows} recordings and their derived rows "
              f"({size * 2**20 / max(rows, 1) / 1024:.1f} KiB per recording)")
        same = results["duckdb file"] == results["ducklake"]
        print(f"row counts {'identical' if same else 'DIFFER'}: {results['ducklake']}")
        files = list((tmp / "lake_data").rglob("*.parquet"))
        print(f"ducklake data files: {len(files)} parquet, {sum(f.stat().st_size for f in files) / 2**20:.1f} MiB")

        # Two writers at once, each replacing a different day (one DuckDB file admits one).
        queue = multiprocessing.Queue()
        extra = [(days[-1] + timedelta(days=k)).isoformat() for k in (1, 2)]
        procs = [multiprocessing.Process(target=_writer, args=(dsn, str(tmp / "lake_data"), d, args.per_day,
                                                                 str(tmp / "stage"), queue)) for d in extra]
        for p in procs:
            p.start()
        outcomes = [queue.get(timeout=300) for _ in procs]
        for p in procs:
            p.join()
        for day, rows, attempts, seconds, error in sorted(outcomes):
            print(f"concurrent writer {day}: {rows} rows in {seconds}s, attempts {attempts}" + (f", FAILED: {error}" if error else ""))
        con = lake_connection(dsn, tmp / "lake_data")
        per_day = con.execute("SELECT partition_date::VARCHAR, count(*) FROM siro.recordings GROUP BY 1 ORDER BY 1").fetchall()
        print(f"lake recordings per day after concurrent writes: {per_day}")
        con.close()
        return 0 if same and not any(o[4] for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
