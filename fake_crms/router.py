"""All fake CRMs behind one base URL: `/salesforce/...`, `/hubspot/...`, `/http/...`."""

from __future__ import annotations

from dataclasses import asdict

from .common import Reply, reply
from .generic import FakeHttpCrm
from .hubspot import FakeHubSpot
from .salesforce import FakeSalesforce


class FakeCrms:
    """Dispatches by the first path segment to the fake it names."""

    def __init__(
        self,
        salesforce: FakeSalesforce | None = None,
        hubspot: FakeHubSpot | None = None,
        http: FakeHttpCrm | None = None,
    ) -> None:
        self.salesforce, self.hubspot, self.http = salesforce, hubspot, http

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, origin: str) -> Reply:
        """Answer a request to `origin` + `raw_path` (path still URL-encoded)."""
        prefix, _, rest = raw_path.lstrip("/").partition("/")
        if prefix == "_journal" and method == "GET":
            return reply(200, self.journals())
        fake = {"salesforce": self.salesforce, "hubspot": self.hubspot, "http": self.http}.get(prefix)
        if fake is None:
            return reply(404, {"error": "not_found", "message": "use /salesforce, /hubspot or /http"})
        lowered = {k.lower(): v for k, v in headers.items()}
        return fake.handle(method, "/" + rest, lowered, body, f"{origin.rstrip('/')}/{prefix}")

    def journals(self) -> dict[str, list[dict]]:
        """Every field write each fake applied, in order, and whether it was acknowledged:
        `GET /_journal`, so a test in another process can count writes on the CRM side."""
        fakes = {"salesforce": self.salesforce, "hubspot": self.hubspot, "http": self.http}
        return {name: [asdict(e) for e in fake.journal.entries] for name, fake in fakes.items() if fake is not None}
