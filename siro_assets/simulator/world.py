"""The simulated Siro organization: a deterministic world that is a pure function of time.

Recording ``i`` of day ``d`` (and everything about it, including a schedule of future events)
is derived from ``random.Random(f"{seed}:{d}:{i}")``. Nothing is stored: the state of a
recording at time ``t`` is its base data with every event ``<= t`` applied, and ``updatedAt``
is the latest applied event. So every process (tests, an HTTP server, a benchmark) that uses
the same :class:`WorldConfig` sees exactly the same world.

Times are handled internally as integer epoch milliseconds, which is the API's precision.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Iterator

from .clock import UTC, format_ms, from_ms, to_ms, to_us

__all__ = ["World", "WorldConfig", "BaseRecording", "EVENT_KINDS", "ENRICHMENTS"]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000

#: Event kinds in a recording's timeline.
EVENT_KINDS = ("created", "processed", "summarized", "extracted", "linked", "relinked", "deleted", "purged")
#: Enrichment blocks, keyed by the payload key.
ENRICHMENTS = ("crm", "summary", "entityExtractions", "evaluationScore", "followups")

_ID_RE = re.compile(r"^rec_(\d{8})_(\d{4,6})_([0-9a-f]{8})$")


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of the simulated world; two worlds with equal configs are identical."""

    seed: int = 7
    recordings_per_day: int = 40
    start_date: date = date(2026, 1, 1)
    max_event_delay: timedelta = timedelta(days=5)
    organization_id: str = "org_sim"


def _h(*parts: object, n: int = 8) -> str:
    """A stable short hex hash (never Python's salted ``hash()``)."""
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).hexdigest()[:n]


def _day_start_ms(d: date) -> int:
    return to_ms(datetime(d.year, d.month, d.day, tzinfo=UTC))


def _ms_to_date(ms: int) -> date:
    return from_ms(ms).date()


# --------------------------------------------------------------------------------------------
# Vocabulary for realistic, varied data.

_FIRST = ["Ana", "Bjørn", "Chloé", "Dmitri", "Emeka", "Fatima", "Giulia", "Hiro", "Isabel", "Jamal",
          "Kai", "Léa", "Mateo", "Nadia", "Owen", "Priya", "Quinn", "Rosa", "Sven", "Tomás", "Uma",
          "Wei", "Xiomara", "Yusuf", "Zoë", "José", "Renée", "Łukasz", "Søren", "François"]
_LAST = ["Andersen", "Brown", "Castillo", "Dubois", "Eriksen", "García", "Hernández", "Ito", "Jones",
         "Kowalski", "López", "Müller", "Nguyen", "O'Brien", "Patel", "Rossi", "Smith", "Tanaka",
         "Williams", "Zhang", "Núñez", "Øberg"]
_STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd", "Sunset Blvd", "Lakeview Ct"]
_TITLE_TEMPLATES = [
    "Roof inspection – {n} {street}",
    "Consultation with {name}",
    "In-home estimate: {name}",
    "Follow-up visit {name} 🏠",
    "Solar quote — {name}",
    "Window replacement @ {n} {street}",
    "Kitchen remodel walkthrough ({name})",
    "HVAC service call #{n}",
    "商談: {name}",
    "زيارة العميل {name}",
    "Appointment {n}",
]
_SECTION_NAMES = ["Overview", "Next steps", "Objections", "Pricing discussed", "Customer concerns",
                  "Action items", "Decision makers", "Résumé", "顧客の懸念", "ملخص المكالمة", "Follow-up 📅"]
_SENTENCES = [
    "The customer asked about financing options and monthly payments.",
    "Rep walked through the three package tiers and the warranty terms.",
    "Homeowner is comparing our quote with two competitors.",
    "👍🏼 Customer loved the demo 🎉 and wants to move forward after talking to their spouse.",
    "お客様は価格について質問し、来週までに決定すると述べました。",
    "客户对安装时间表表示担忧，希望在月底前完成。",
    "Le client a déjà signé l'accord préliminaire — très satisfait, naïve café talk included.",
    "العميل مهتم بالعرض ويرغب في معرفة المزيد عن الضمان.",
    "לקוח ביקש הצעת מחיר מעודכנת עד יום חמישי.",
    "Der Kunde möchte die Größe der Fenster überprüfen lassen; Straße ist schwer zugänglich.",
    "Objection: \"too expensive\" — countered with the 0% APR promo.",
    "Next visit scheduled; bring samples of shingles (charcoal, slate, and weathered wood).",
    "Notes contain a tab\tand a backslash \\ and a newline\nbetween lines.",
    "Zalgo-ish combining marks: é (e + ́), ñ (n + ̃).",
    "Price quoted: $14,950 before incentives; customer expects <$12k.",
    "Customer mentioned a prior bad experience with another contractor 😕.",
]

# Extraction definitions: name -> (kind, default mappings)
_EXTRACTIONS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("customer_name", "str", [("Contact", "Name"), ("Lead", "Name")]),
    ("budget", "int", [("Opportunity", "Amount")]),
    ("close_probability", "float", [("Opportunity", "Probability")]),
    ("decision_maker_present", "bool", [("Engagement", "Decision_Maker_Present__c")]),
    ("competitor_mentioned", "str_or_null", [("Opportunity", "Competitor__c")]),
    ("products_discussed", "str_list", [("Opportunity", "Products__c"), ("Account", "Interests__c")]),
    ("follow_up_date", "date", [("Engagement", "Follow_Up_Date__c")]),
    ("signals", "mixed_list", [("Engagement", "Signals__c")]),
    ("num_windows", "int", [("Opportunity", "Quantity__c")]),
    ("lead_source", "str", [("Lead", "LeadSource")]),
    ("call_notes", "unicode", [("Engagement", "Description")]),
    ("roof_age_years", "float", [("Account", "Roof_Age__c")]),
    ("financing_requested", "bool", [("Opportunity", "Financing__c"), ("Lead", "Financing__c")]),
    ("household_size", "null", [("Contact", "Household_Size__c")]),
]
_ALL_MAPPINGS = sorted({m for _, _, ms in _EXTRACTIONS for m in ms})
_PRODUCTS = ["Solar panels", "Battery", "Roof", "Gutters", "Windows", "Siding", "HVAC", "Heat pump", "Insulation", "EV charger"]
_COMPETITORS = ["Acme Roofing", "SunPower", "Tesla Energy", "Renewal by Andersen", "Local contractor"]
_CONNECTIONS = ["ic_sim_salesforce", "ic_sim_hubspot"]


# --------------------------------------------------------------------------------------------


class BaseRecording:
    """The time-independent description of one recording plus its event schedule.

    Event times are epoch ms (or None when the event never happens). ``state_at(now_ms)`` style
    questions are answered by the World; this object is immutable once built.
    """

    __slots__ = (
        "id", "day", "index", "created", "events", "user_id", "title", "purged_title_blank",
        "duration", "lat", "lon", "result", "crm", "crm_relinked", "summary", "extractions",
        "evaluation_score", "followups", "_rng_seed",
    )

    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def event_time(self, kind: str) -> int | None:
        """The time of the first event of ``kind`` or None."""
        for t, k in self.events:
            if k == kind:
                return t
        return None

    def updated_ms(self, now_ms: int) -> int:
        """updatedAt at ``now_ms``: the latest event time <= now (events are sorted)."""
        u = self.created
        for t, _ in self.events:
            if t <= now_ms:
                if t > u:
                    u = t
            else:
                break
        return u

    def has(self, kind: str, now_ms: int) -> bool:
        """Whether an event of ``kind`` has happened by ``now_ms``."""
        for t, k in self.events:
            if t > now_ms:
                return False
            if k == kind:
                return True
        return False


class World:
    """A deterministic simulated organization; see the module docstring.

    Days are generated lazily and cached (``functools.lru_cache``), so a world spanning years
    costs nothing until a query touches a day.
    """

    def __init__(self, config: WorldConfig | None = None) -> None:
        """Build a world from ``config`` (defaults: seed 7, 40 recordings/day from 2026-01-01)."""
        self.config = config or WorldConfig()
        self.max_delay_ms = int(self.config.max_event_delay / timedelta(milliseconds=1))
        self._day_cached = functools.lru_cache(maxsize=2048)(self._generate_day)
        self._users = self._make_users()
        self._accounts = [self._pool_obj("acc", k, "001") for k in range(300)]

    # ---- pools shared across recordings -------------------------------------------------
    def _pool_obj(self, kind: str, k: int, prefix: str) -> dict[str, str]:
        h = _h(self.config.seed, kind, k, n=16)
        return {"id": f"{kind}_{h[:12]}", "externalId": prefix + h[:12].upper() + "AAA"}

    def _make_users(self) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.config.seed}:users")
        users = []
        for k in range(24):
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            users.append({
                "userId": f"usr_{_h(self.config.seed, 'user', k, n=12)}",
                "name": name,
                "crm": self._pool_obj("cu", k, "005"),
                "team": k % 4,
            })
        return users

    # ---- days ---------------------------------------------------------------------------
    def day_count(self, d: date) -> int:
        """How many recordings are created on day ``d`` (0 before start_date)."""
        if d < self.config.start_date:
            return 0
        rpd = self.config.recordings_per_day
        if rpd <= 0:
            return 0
        rng = random.Random(f"{self.config.seed}:{d.isoformat()}:count")
        wd = d.weekday()
        factor = 0.45 if wd == 5 else 0.3 if wd == 6 else rng.uniform(0.85, 1.15)
        # At least 2 so the midnight / 23:59:59.999 edge recordings exist every day.
        return max(2, round(rpd * factor))

    def day(self, d: date) -> tuple[BaseRecording, ...]:
        """The base recordings created on day ``d``, sorted by (createdAt, id). Cached."""
        if d < self.config.start_date:
            return ()
        return self._day_cached(d)

    def _generate_day(self, d: date) -> tuple[BaseRecording, ...]:
        n = self.day_count(d)
        seed = self.config.seed
        ds = d.isoformat()
        day0 = _day_start_ms(d)
        drng = random.Random(f"{seed}:{ds}:day")
        # Shared timestamps ("bulk CRM sync", "bulk relink") make updatedAt ties across many
        # recordings, so pagination over updatedAt must cope with equal keys at page edges.
        bulk_link = [day0 + DAY_MS + 2 * HOUR_MS + drng.randrange(3 * HOUR_MS),
                     day0 + 2 * DAY_MS + drng.randrange(DAY_MS)]
        bulk_relink = day0 + 3 * DAY_MS + drng.randrange(DAY_MS)

        created: list[int] = []
        for i in range(n):
            if i == 0:
                c = day0  # exactly 00:00:00.000
            elif i == 1:
                c = day0 + DAY_MS - 1  # exactly 23:59:59.999
            elif i == 3 or (i > 3 and drng.random() < 0.04):
                c = created[i - 1 if i == 3 else drng.randrange(2, i)]  # same-millisecond creation
            else:
                # Business-hours heavy, but spread across the whole day.
                if drng.random() < 0.8:
                    c = day0 + 13 * HOUR_MS + drng.randrange(11 * HOUR_MS) if drng.random() < 0.5 else day0 + 8 * HOUR_MS + drng.randrange(16 * HOUR_MS - 1)
                else:
                    c = day0 + drng.randrange(DAY_MS)
            created.append(c)

        recs = [self._generate_recording(d, i, created[i], bulk_link, bulk_relink) for i in range(n)]
        recs.sort(key=lambda r: (r.created, r.id))
        return tuple(recs)

    def _generate_recording(self, d: date, i: int, created: int, bulk_link: list[int], bulk_relink: int) -> BaseRecording:
        seed = self.config.seed
        rng = random.Random(f"{seed}:{d.isoformat()}:{i}")
        r = BaseRecording()
        r.day = d
        r.index = i
        r.id = f"rec_{d.strftime('%Y%m%d')}_{i:04d}_{_h(seed, d.isoformat(), i)}"
        r.created = created
        limit = created + self.max_delay_ms

        def at(t: int) -> int:
            return min(t, limit)

        ev: list[tuple[int, str]] = [(created, "created")]
        processed = summarized = extracted = None
        if rng.random() < 0.985:
            processed = at(created + rng.randrange(MIN_MS, 30 * MIN_MS))
            ev.append((processed, "processed"))
            if rng.random() < 0.9:
                summarized = at(processed + rng.randrange(30_000, 20 * MIN_MS))
                ev.append((summarized, "summarized"))
            if rng.random() < 0.88:
                extracted = at(processed + rng.randrange(30_000, 25 * MIN_MS))
                ev.append((extracted, "extracted"))
        linked = None
        if rng.random() < 0.8:
            if rng.random() < 0.3 and bulk_link[0] <= limit:
                linked = bulk_link[0] if rng.random() < 0.6 or bulk_link[1] > limit else bulk_link[1]
            else:
                linked = at(created + rng.randrange(HOUR_MS, 3 * DAY_MS))
            ev.append((linked, "linked"))
            if rng.random() < 0.15:
                if rng.random() < 0.4 and linked < bulk_relink <= limit:
                    rel = bulk_relink
                else:
                    rel = at(linked + rng.randrange(2 * HOUR_MS, 2 * DAY_MS))
                if rel > linked:
                    ev.append((rel, "relinked"))
        if rng.random() < 0.05:
            ev.append((at(created + rng.randrange(DAY_MS, 4 * DAY_MS + 12 * HOUR_MS)), "deleted"))
        if rng.random() < 0.03:
            ev.append((at(created + rng.randrange(2 * DAY_MS, 5 * DAY_MS)), "purged"))
        order = {k: n for n, k in enumerate(EVENT_KINDS)}
        ev.sort(key=lambda e: (e[0], order[e[1]]))
        r.events = ev

        user = self._users[rng.randrange(len(self._users))]
        r.user_id = user["userId"]
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        r.title = rng.choice(_TITLE_TEMPLATES).format(name=name, n=rng.randrange(1, 9999), street=rng.choice(_STREETS))
        r.purged_title_blank = rng.random() < 0.5
        r.duration = rng.randrange(30_000, 2 * HOUR_MS)
        r.lat = round(rng.uniform(25.0, 48.5), 6)
        r.lon = round(rng.uniform(-123.0, -70.0), 6)
        r.result = rng.choices(["OPEN", "WON", "LOST"], weights=[60, 25, 15])[0]
        r.crm = self._make_crm(rng, user) if linked is not None else None
        r.crm_relinked = self._relink_crm(rng, r.crm) if r.crm is not None else None
        r.summary = self._make_summary(rng, r.id) if summarized is not None else []
        r.extractions = self._make_extractions(rng, name) if extracted is not None else []
        score = rng.uniform(0, 100)
        r.evaluation_score = (rng.choice([int(score), round(score, 1), round(score, 2)]) if rng.random() < 0.85 else None)
        r.followups = [
            {"id": f"fu_{_h(seed, r.id, 'fu', k, n=12)}", "score": rng.choice([1, 2, 3, 4, 5, round(rng.uniform(1, 5), 1)])}
            for k in range(rng.choice([0, 0, 1, 1, 2, 3]))
        ]
        return r

    def _ref(self, rng: random.Random, kind: str, prefix: str) -> dict[str, str]:
        h = "%016x" % rng.getrandbits(64)
        return {"id": f"{kind}_{h[:12]}", "externalId": prefix + h.upper()[:12] + "AAA"}

    def _make_crm(self, rng: random.Random, user: dict[str, Any]) -> dict[str, Any]:
        crm: dict[str, Any] = {"integrationConnectionId": rng.choice(_CONNECTIONS)}
        # Each sub-block is independently present or absent (key missing): the published schema
        # does not allow null there. One draw per sub-block either way, so the rest of the
        # world does not shift.
        u = rng.random()
        if u < 0.85:
            extra = rng.choice([0, 0, 0, 1, 2])
            others = [self._users[rng.randrange(len(self._users))]["crm"] for _ in range(extra)]
            users = {u["id"]: u for u in [user["crm"], *others]}
            crm["users"] = [dict(u) for u in users.values()][:3]
        elif u < 0.92:
            crm["users"] = []
        u = rng.random()
        if u < 0.7:
            crm["engagement"] = self._ref(rng, "eng", "00U")
        u = rng.random()
        if u < 0.5:
            crm["opportunity"] = self._ref(rng, "opp", "006")
        u = rng.random()
        if u < 0.8:
            crm["contacts"] = [self._ref(rng, "con", "003") for _ in range(rng.choice([0, 1, 1, 2, 3, 4]))]
        u = rng.random()
        if u < 0.6:
            crm["account"] = self._accounts[rng.randrange(len(self._accounts))]
        u = rng.random()
        if u < 0.25:
            crm["lead"] = self._ref(rng, "lead", "00Q")
        return crm

    def _relink_crm(self, rng: random.Random, crm: dict[str, Any]) -> dict[str, Any]:
        new = dict(crm)
        new["opportunity"] = self._ref(rng, "opp", "006")
        new["contacts"] = list(crm.get("contacts") or []) + [self._ref(rng, "con", "003")]
        if rng.random() < 0.5:
            new["account"] = self._accounts[rng.randrange(len(self._accounts))]
        return new

    def _make_summary(self, rng: random.Random, rid: str) -> list[dict[str, str]]:
        k = rng.choice([0, 1, 2, 3, 3, 4, 5])
        names = rng.sample(_SECTION_NAMES, k)
        out = []
        for j, name in enumerate(names):
            if rng.random() < 0.03:
                parts: list[str] = []
                size = 0
                while size < 20_000:
                    s = rng.choice(_SENTENCES)
                    parts.append(s)
                    size += len(s) + 1
                content = " ".join(parts)
            else:
                content = " ".join(rng.choice(_SENTENCES) for _ in range(rng.randrange(1, 5)))
            out.append({"id": f"sum_{_h(self.config.seed, rid, j, n=12)}", "name": name, "content": content})
        return out

    def _make_extractions(self, rng: random.Random, customer: str) -> list[dict[str, Any]]:
        if rng.random() < 0.1:
            return []  # extraction finished but found nothing
        chosen = rng.sample(_EXTRACTIONS, rng.randrange(1, 9))
        out = []
        for name, kind, default_maps in chosen:
            value: Any
            if kind == "str":
                value = customer if name == "customer_name" else rng.choice(["Web form", "Referral", "Door knock", "Google Ads", "Événement"])
            elif kind == "int":
                value = rng.choice([rng.randrange(1000, 90_000), rng.randrange(1, 40), 0])
            elif kind == "float":
                value = round(rng.uniform(0, 1) if name == "close_probability" else rng.uniform(0.5, 40), 3)
            elif kind == "bool":
                value = rng.random() < 0.5
            elif kind == "str_or_null":
                value = rng.choice(_COMPETITORS + [None])
            elif kind == "str_list":
                value = rng.sample(_PRODUCTS, rng.randrange(0, 4))
            elif kind == "date":
                value = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            elif kind == "mixed_list":
                value = [rng.choice(["ready", "needs spouse", "紧急"]), rng.randrange(1, 10), round(rng.uniform(0, 1), 2), rng.random() < 0.5, None]
                rng.shuffle(value)
            elif kind == "unicode":
                value = rng.choice(_SENTENCES)
            else:
                value = None
            if kind != "null" and rng.random() < 0.05:
                value = None
            u = rng.random()
            maps: list[dict[str, str]] | None
            if u < 0.15:
                maps = None
            elif u < 0.27:
                maps = []
            else:
                pool = list(default_maps)
                if rng.random() < 0.3:
                    pool.append(rng.choice(_ALL_MAPPINGS))
                maps = [{"crmModelName": m, "crmFieldName": f} for m, f in dict.fromkeys(pool)][:3]
            out.append({"name": name, "value": value, "mappings": maps})
        return out

    # ---- lookup -----------------------------------------------------------------------
    def base(self, recording_id: str) -> BaseRecording | None:
        """The base recording for an id, or None if the id is not one of this world's."""
        m = _ID_RE.match(recording_id or "")
        if not m:
            return None
        try:
            d = datetime.strptime(m.group(1), "%Y%m%d").date()
        except ValueError:
            return None
        i = int(m.group(2))
        if d < self.config.start_date or i >= self.day_count(d):
            return None
        for r in self.day(d):
            if r.index == i:
                return r if r.id == recording_id else None
        return None

    def iter_days(self, first: date, last: date) -> Iterator[date]:
        """Days from ``max(first, start_date)`` to ``last`` inclusive."""
        d = max(first, self.config.start_date)
        while d <= last:
            yield d
            d += timedelta(days=1)

    # ---- payloads -----------------------------------------------------------------------
    def payload(self, r: BaseRecording, now_ms: int, enrich: Iterable[str] = (), *, detailed_followups: bool = False) -> dict[str, Any]:
        """The API object for ``r`` as of ``now_ms``, with the requested enrichment blocks."""
        now_ms = int(now_ms)
        ev = {}
        for t, k in r.events:
            if t > now_ms:
                break
            ev.setdefault(k, t)
            if k == "relinked":
                ev["relinked"] = t
        purged = ev.get("purged")
        deleted = ev.get("deleted")
        processed = "processed" in ev
        obj: dict[str, Any] = {
            "id": r.id,
            "organizationId": self.config.organization_id,
            "userId": r.user_id,
            "title": "" if (purged is not None and r.purged_title_blank) else r.title,
            "durationInMilliseconds": r.duration,
            "latitude": r.lat,
            "longitude": r.lon,
            "result": r.result,
            "createdAt": format_ms(r.created),
            "updatedAt": format_ms(r.updated_ms(now_ms)),
            "rootDataPurgedAt": format_ms(purged) if purged is not None else None,
            "deleted": deleted is not None,
            "deletedAt": format_ms(deleted) if deleted is not None else None,
            "links": {"web": {"self": f"https://app.siro.ai/recordings/{r.id}"}},
            "isProcessingDone": processed,
            "isEntityExtractionDone": "extracted" in ev,
            "isSummaryDone": "summarized" in ev,
        }
        enrich = set(enrich)
        if "crm" in enrich:
            crm = None
            if "relinked" in ev:
                crm = r.crm_relinked
            elif "linked" in ev:
                crm = r.crm
            obj["crm"] = _copy(crm)
        if "summary" in enrich:
            obj["summary"] = _copy(r.summary) if ("summarized" in ev and purged is None) else []
        if "entityExtractions" in enrich:
            obj["entityExtractions"] = _copy(r.extractions) if ("extracted" in ev and purged is None) else []
        if "evaluationScore" in enrich and processed and r.evaluation_score is not None:
            obj["evaluationScore"] = r.evaluation_score
        if "followups" in enrich:
            if not processed:
                obj["followups"] = []
            elif detailed_followups:
                obj["followups"] = [self._followup_detail(r, f, ev["processed"]) for f in r.followups]
            else:
                obj["followups"] = [dict(f) for f in r.followups]
        return obj

    def _followup_detail(self, r: BaseRecording, f: dict[str, Any], processed: int) -> dict[str, Any]:
        """The full followup object GET-by-id returns: every field the schema requires."""
        rng = random.Random(f"{self.config.seed}:{f['id']}")
        user = next((u for u in self._users if u["userId"] == r.user_id), self._users[0])
        followup_type = rng.choice(["REHASH", "CROSS_SELL"])
        action = rng.choice([None, "Call back next week", "Send revised quote"])
        context_value = rng.choice(_SENTENCES)
        starred = rng.random() < 0.2
        status = rng.choice(["TO_DO", "IN_PROGRESS", "COMPLETE"])
        # Drawn after the original fields so adding them left those values unchanged.
        note = rng.choice(_SENTENCES) if rng.random() < 0.3 else None
        completed = status == "COMPLETE"
        return {
            "id": f["id"],
            "followupId": f["id"],
            "recordingId": r.id,
            "recordingTitle": r.title,
            "repName": user["name"],
            "repId": user["userId"],
            "teamName": f"Team {user['team'] + 1}",
            "teamId": f"team_{user['team'] + 1}",
            "dateCreated": format_ms(processed),
            "followupType": followup_type,
            "score": f["score"],
            "followupAction": action,
            "context": [{"header": "MAIN_OBJECTION", "value": context_value}],
            "updatedAt": format_ms(processed),
            "metadata": [],
            "starred": starred,
            "status": status,
            "thinking": "Score based on objection handling and commitment.",
            "history": None,
            "crmUrl": None,
            "crmCustomer": None,
            "hasFollowupComment": note is not None,
            "note": note,
            "completed": completed,
            "completedBy": user["userId"] if completed else None,
            "completedAt": format_ms(processed) if completed else None,
        }

    # ---- truth helpers ----------------------------------------------------------------
    def recordings(self, now: datetime, *, created_from: datetime | None = None, created_to: datetime | None = None) -> list[dict[str, Any]]:
        """Full payloads (every enrichment block) of recordings that exist at ``now`` and were
        created in ``[created_from, created_to)``, ordered by (createdAt, id)."""
        now_ms = to_ms(now)
        lo_us = to_us(created_from) if created_from is not None else None
        hi_us = to_us(created_to) if created_to is not None else None
        first = _ms_to_date(lo_us // 1000) if lo_us is not None else self.config.start_date
        last_ms = now_ms if hi_us is None else min(now_ms, hi_us // 1000)
        out = []
        for d in self.iter_days(first, _ms_to_date(last_ms)):
            for r in self.day(d):
                c_us = r.created * 1000
                if r.created > now_ms or (lo_us is not None and c_us < lo_us) or (hi_us is not None and c_us >= hi_us):
                    continue
                out.append(self.payload(r, now_ms, ENRICHMENTS))
        return out

    def recording(self, recording_id: str, now: datetime) -> dict[str, Any] | None:
        """The full payload (every enrichment block) of one recording at ``now``, or None if it
        does not exist (unknown id, or created after ``now``)."""
        r = self.base(recording_id)
        now_ms = to_ms(now)
        if r is None or r.created > now_ms:
            return None
        return self.payload(r, now_ms, ENRICHMENTS)

    def timeline(self, recording_id: str) -> list[tuple[datetime, str]]:
        """Every scheduled event of a recording (past and future), sorted; KeyError if unknown."""
        r = self.base(recording_id)
        if r is None:
            raise KeyError(recording_id)
        return [(from_ms(t), k) for t, k in r.events]


def _copy(v: Any) -> Any:
    """Deep-copy JSON-ish data so callers can't mutate the cached world."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v
