"""The token's request budget in PostgreSQL: two processes (two machines' pods) sharing only
the lake's catalog database never exceed the budget together; the token is never stored."""

from __future__ import annotations

import multiprocessing
import time

import psycopg2
import pytest

from siro_assets.api_client.pacing import RequestPacer, budget_key
from siro_assets.api_client.pg_budget import BUDGET_TABLE, PostgresRequestPacer

TOKEN = "siro-test-token-4f1c0ffee"
RPM, BURST, PER_PROCESS = 300.0, 3, 16  # 5 requests/s, bursts of 3: about 6 s for both processes
WINDOW = 2.0


def _send_in_process(dsn: str | None, start, out) -> None:
    """One pod: pace PER_PROCESS requests, report when each was allowed out (wall clock)."""
    try:
        pacer = (PostgresRequestPacer(dsn, budget_key(TOKEN), RPM, burst=BURST) if dsn
                 else RequestPacer(RPM, burst=BURST))  # the control: a budget of its own
        pacer.reserve() if dsn else None  # connect (and create the table) before the race
        start.wait(timeout=120)
        sent = []
        for _ in range(PER_PROCESS - (1 if dsn else 0)):
            pacer.acquire()
            sent.append(time.time())
        out.put((sent, None))
    except BaseException as exc:  # reported to the test, which fails with it
        out.put(([], f"{type(exc).__name__}: {exc}"))


def _two_processes(dsn: str | None) -> list[float]:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_send_in_process, args=(dsn, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [error for _, error in results] == [None, None], results
    return sorted(t for sent, _ in results for t in sent)


def _busiest_window(times: list[float]) -> int:
    """The most requests any WINDOW-second interval holds."""
    return max(sum(1 for t in times[i:] if t < start + WINDOW) for i, start in enumerate(times))


# GCRA: any interval of T seconds admits at most BURST + T * rate requests; two more for
# sleeps that overslept on a busy machine (each 0.2 s late lets one more in).
LIMIT = BURST + int(WINDOW * RPM / 60) + 2


def test_two_processes_sharing_the_postgresql_budget_stay_within_it(catalog_dsn):
    times = _two_processes(catalog_dsn)
    assert _busiest_window(times) <= LIMIT
    # The budget was used in full by both together (not each pacing at half).
    assert len(times) == 2 * (PER_PROCESS - 1)

    con = psycopg2.connect(catalog_dsn)
    with con, con.cursor() as cur:
        cur.execute(f"SELECT * FROM {BUDGET_TABLE}")
        rows = cur.fetchall()
    con.close()
    assert [row[0] for row in rows] == [budget_key(TOKEN)]  # one row per token, under its hash
    assert TOKEN not in repr(rows)


def test_without_the_shared_budget_two_processes_exceed_it():
    """The control: two processes pacing on their own send about twice the rate."""
    assert _busiest_window(_two_processes(None)) > LIMIT


def test_the_pacer_never_shows_the_dsn(catalog_dsn):
    pacer = PostgresRequestPacer(catalog_dsn, budget_key(TOKEN), RPM, burst=BURST, clock=lambda: 1000.0,
                                 sleep=lambda s: None)
    assert "password" not in repr(pacer) and catalog_dsn not in repr(pacer)
    # On an injected clock: the burst is free, then one slot per interval.
    got = [round(pacer.reserve(), 3) for _ in range(BURST + 2)]
    assert got == [0.0] * BURST + [0.2, 0.4], got
    pacer.close()


def test_an_unreachable_budget_fails_without_the_password():
    pacer = PostgresRequestPacer("host=127.0.0.1 port=1 dbname=x user=u password=pw-never-shown connect_timeout=1",
                                 "k", RPM)
    with pytest.raises(psycopg2.OperationalError) as failed:
        pacer.reserve()
    assert "pw-never-shown" not in str(failed.value)
