"""The signed-webhook receiver and its durable inbox: Siro's push path into the pipeline.

Siro's Admin dashboard sends `integrations.recordingProcessed` and
`integrations.recordingLinked`, signed the Svix (Standard Webhooks) way. `app` serves one
path and secret per endpoint, `verify` checks signatures with the `standardwebhooks`
library, `inbox` stores accepted events in SQLite beside the warehouse, or `pg_inbox` in a
PostgreSQL table (`location` picks one from the instance's settings), never in DuckDB,
so a long rebuild holding the writer lock cannot make the receiver time out. `replay`
re-queues stored events. The event is a
hint: whoever drains the inbox fetches the recording from the API.

May import `siro_assets.api_client.models` (the `crm` block's model); never Dagster, DuckDB
or the warehouse. The one exception is `project`, which loads the project's
`SiroComponent` instances through Dagster's `ComponentTree` (no Definitions built, no
token) so that each endpoint's secret variable and inbox are the ones its `defs.yaml`
names, and the receiver and the sensor agree.
"""
