"""Siro external API client: typed models, pacing, retries.

Imports httpx, pydantic and tenacity only: nothing from Dagster, DuckDB or the rest of `siro_assets`.
"""

from .async_client import AsyncSiroClient
from .core import DEFAULT_BASE_URL, Page, RawPage, RequestStats
from .errors import (
    SiroAuthError,
    SiroBadRequestError,
    SiroError,
    SiroMalformedResponseError,
    SiroNotFoundError,
    SiroUnavailableError,
)
from .models import (
    CallerIdentity,
    Crm,
    CrmFieldMapping,
    CrmObjectRef,
    EntityExtraction,
    Recording,
    RecordingLinks,
    SummarySection,
    WebLinks,
)
from .pacing import RequestPacer, default_pacer
from .query import RecordingsQuery, created_window
from .retry import RetryPolicy
from .sync_client import SiroClient
from .timestamps import MS, format_ts, parse_ts

__all__ = [
    "SiroClient",
    "AsyncSiroClient",
    "RecordingsQuery",
    "Page",
    "RawPage",
    "RequestStats",
    "RequestPacer",
    "RetryPolicy",
    "CallerIdentity",
    "Recording",
    "RecordingLinks",
    "WebLinks",
    "Crm",
    "CrmObjectRef",
    "SummarySection",
    "EntityExtraction",
    "CrmFieldMapping",
    "SiroError",
    "SiroAuthError",
    "SiroNotFoundError",
    "SiroBadRequestError",
    "SiroUnavailableError",
    "SiroMalformedResponseError",
    "DEFAULT_BASE_URL",
    "created_window",
    "default_pacer",
    "format_ts",
    "parse_ts",
    "MS",
]
