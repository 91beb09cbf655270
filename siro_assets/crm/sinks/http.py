"""Any other CRM or middleware: one `PATCH {url}/{crmModelName}/{externalId}` per record.

The body is a JSON object of field -> value (values as extracted; a null is sent only
when the connection opts in). Path segments are URL-encoded (ids can hold `/`, `#`,
spaces). An id or model that would still change the URL's path (empty, `.`, `..`: URL
parsers drop dot segments, so `..` would PATCH the collection's parent) is rejected as
`invalid_external_id` before any request. The `Idempotency-Key` header is derived from the delivery keys of the record's
fields: stable across retries of one delivery, new for the next delivery of a value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import quote

import httpx

from ..calls import CrmUnreachable
from ..config import HttpSettings
from ..writes import DELIVERED, INVALID_EXTERNAL_ID, FieldWrite, Outcome
from .base import (
    DeliveryStopped, Prepared, chunk_records, error_of, failed, group_records, json_body, outcomes_for, reject,
)
from .client import HttpCrmSink

# Records per ledger round trip (intent, then outcomes); each record is still its own request.
RECORDS_PER_BATCH = 50


def idempotency_key(batch: list[Prepared]) -> str:
    """One request's key: the sorted delivery keys of the fields it carries."""
    keys = sorted(p.write.delivery_key for p in batch)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def record_url(base: str, model: str, external_id: str) -> str | None:
    """`{base}/{model}/{external_id}` with each segment URL-encoded, or None when the URL
    would not name that record once normalised (an empty or dot segment)."""
    segments = [quote(model, safe=""), quote(external_id, safe="")]
    if any(segment in ("", ".", "..") for segment in segments):
        return None
    url = "/".join((base.rstrip("/"), *segments))
    # Belt and braces: the path httpx will send must be the one built here.
    expected = httpx.URL(base.rstrip("/")).raw_path.rstrip(b"/") + ("/" + "/".join(segments)).encode()
    return url if httpx.URL(url).raw_path == expected else None


class HttpSink(HttpCrmSink):
    """Writes to a generic HTTP endpoint."""

    name = "http"
    repr_field = "url"
    settings: HttpSettings

    def _headers(self) -> dict[str, str]:
        token = self.settings.token
        return {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}

    def prepare(self, writes: list[FieldWrite]) -> tuple[list[Prepared], list[Outcome]]:
        """No schema to read: values go as extracted, to the model and field as mapped.

        A write whose record URL would change after normalisation is a reject.
        """
        fingerprint = self.settings.fingerprint()
        ready, rejects = [], []
        for w in writes:
            if record_url(self.settings.url, w.crm_model_name.strip(), w.external_id) is None:
                rejects.append(reject(w, INVALID_EXTERNAL_ID, f"{w.crm_model_name.strip()!r} / {w.external_id!r} "
                                      "would change the request's URL path (empty or dot segment)", fingerprint))
                continue
            ready.append(Prepared(w, w.crm_model_name.strip(), w.crm_field_name.strip(), w.value, fingerprint))
        return ready, rejects

    def batches(self, prepared: list[Prepared]) -> Iterator[list[Prepared]]:
        """Up to `RECORDS_PER_BATCH` records: one ledger transaction each side, one request per record."""
        return chunk_records(prepared, RECORDS_PER_BATCH)

    def send(self, batch: list[Prepared]) -> list[Outcome]:
        """PATCH each record's fields, one request per record."""
        outcomes: list[Outcome] = []
        for record in group_records(batch).values():
            try:
                outcomes += self._patch(record)
            except DeliveryStopped as exc:
                raise DeliveryStopped(exc.code, exc.message, outcomes + exc.outcomes, exc.http_status) from None
        return outcomes

    def _patch(self, batch: list[Prepared]) -> list[Outcome]:
        first = batch[0]
        url = record_url(self.settings.url, first.wire_object, first.write.external_id)
        if url is None:   # prepare() rejects these; never PATCH a URL that names another resource
            return [reject(p.write, INVALID_EXTERNAL_ID, "the record URL changes after normalisation", p.fingerprint)
                    for p in batch]
        body = {p.wire_field: p.wire_value for p in batch}
        try:
            response = self.calls.request("PATCH", url, json=body, headers={"Idempotency-Key": idempotency_key(batch)})
        except CrmUnreachable as exc:
            return failed(batch, f"http_{exc.status}" if exc.status else "unreachable", str(exc), exc.status)
        status = response.status_code
        if 200 <= status < 300:
            return outcomes_for(batch, DELIVERED, http_status=status)
        code, message = error_of(json_body(response), f"http_{status}")
        if status in (401, 403):
            raise DeliveryStopped(code, f"the endpoint refused the credentials: {message}",
                                  failed(batch, code, message, status), status)
        if status in (408, 409, 425):
            return failed(batch, code, message, status)
        return [reject(p.write, code, message, p.fingerprint, status) for p in batch]
