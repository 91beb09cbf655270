"""The writeback ledger in DuckDB: field state, attempt log, delivery queue, outbox.

One module a job: `tables` (names, DDL), `targets` (due, unchanged, outstanding),
`queue` (the due fields of the delivery in progress, by page), `outcomes` (intents,
outcomes, orphans, the run's row), `outbox`; `rows` holds how they write. Rows are
read and written by column name. Every function is one short transaction on a
connection the caller opened for just that: delivery never holds the warehouse while
it waits on a CRM.
"""

from .outbox import outbox_row, queue_outbox, upsert_outbox
from .outcomes import Orphan, intent_row, log_orphans, orphaned_intents, outcome_row, record_intent, record_outcomes, record_run
from .queue import Candidate, QueuedField, drop_due, due_page, stage_due
from .tables import DDL, FIELD_COLUMNS, LOG_COLUMNS, LOG_TABLE, OUTBOX_TABLE, QUEUE_TABLE, RUNS_TABLE, STATE_TABLE, ensure_ledger
from .targets import OUTSTANDING_SQL, clear_params, count_unchanged, outstanding

__all__ = [
    "DDL", "FIELD_COLUMNS", "LOG_COLUMNS", "LOG_TABLE", "OUTBOX_TABLE", "OUTSTANDING_SQL", "QUEUE_TABLE", "RUNS_TABLE",
    "STATE_TABLE", "Candidate", "Orphan", "QueuedField", "clear_params", "count_unchanged", "drop_due", "due_page",
    "ensure_ledger", "intent_row", "log_orphans", "orphaned_intents", "outbox_row", "outcome_row", "outstanding",
    "queue_outbox", "record_intent", "record_outcomes", "record_run", "stage_due", "upsert_outbox",
]
