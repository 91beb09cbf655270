"""What a simulated recording says: its CRM links, summary, extractions and followups.

:class:`Organization` holds the pools recordings share (reps, accounts) and draws each
block from the recording's own ``random.Random``, so a block is a pure function of the
world's seed and the recording. The order of draws is part of the world: reordering them
changes every recording after the change.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from .clock import format_ms
from .timeline import BaseRecording
from .vocabulary import (
    ALL_MAPPINGS,
    COMPETITORS,
    CONNECTIONS,
    EXTRACTIONS,
    FIRST_NAMES,
    LAST_NAMES,
    PRODUCTS,
    SECTION_NAMES,
    SENTENCES,
)

__all__ = ["Organization", "stable_hash"]


def stable_hash(*parts: object, n: int = 8) -> str:
    """A stable short hex hash (never Python's salted ``hash()``)."""
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).hexdigest()[:n]


class Organization:
    """The reps and accounts of a simulated organization, and the content drawn from them."""

    def __init__(self, seed: int) -> None:
        """Build the shared pools for ``seed`` (24 reps, 300 accounts)."""
        self.seed = seed
        self.users = self._make_users()
        self.accounts = [self._pool_obj("acc", k, "001") for k in range(300)]

    # ---- pools shared across recordings -------------------------------------------------
    def _pool_obj(self, kind: str, k: int, prefix: str) -> dict[str, str]:
        h = stable_hash(self.seed, kind, k, n=16)
        return {"id": f"{kind}_{h[:12]}", "externalId": prefix + h[:12].upper() + "AAA"}

    def _make_users(self) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.seed}:users")
        users = []
        for k in range(24):
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            users.append({
                "userId": f"usr_{stable_hash(self.seed, 'user', k, n=12)}",
                "name": name,
                "crm": self._pool_obj("cu", k, "005"),
                "team": k % 4,
            })
        return users

    # ---- per-recording blocks -----------------------------------------------------------
    @staticmethod
    def _ref(rng: random.Random, kind: str, prefix: str) -> dict[str, str]:
        h = "%016x" % rng.getrandbits(64)
        return {"id": f"{kind}_{h[:12]}", "externalId": prefix + h.upper()[:12] + "AAA"}

    def crm(self, rng: random.Random, user: dict[str, Any]) -> dict[str, Any]:
        """The ``crm`` block a recording by ``user`` gets when it is first linked."""
        crm: dict[str, Any] = {"integrationConnectionId": rng.choice(CONNECTIONS)}
        # Each sub-block is independently present or absent (key missing): the published schema
        # does not allow null there. One draw per sub-block either way, so the rest of the
        # world does not shift.
        u = rng.random()
        if u < 0.85:
            extra = rng.choice([0, 0, 0, 1, 2])
            others = [self.users[rng.randrange(len(self.users))]["crm"] for _ in range(extra)]
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
            crm["account"] = self.accounts[rng.randrange(len(self.accounts))]
        u = rng.random()
        if u < 0.25:
            crm["lead"] = self._ref(rng, "lead", "00Q")
        return crm

    def relinked_crm(self, rng: random.Random, crm: dict[str, Any]) -> dict[str, Any]:
        """The ``crm`` block after a relink: a new opportunity, one more contact, maybe a new account."""
        new = dict(crm)
        new["opportunity"] = self._ref(rng, "opp", "006")
        new["contacts"] = list(crm.get("contacts") or []) + [self._ref(rng, "con", "003")]
        if rng.random() < 0.5:
            new["account"] = self.accounts[rng.randrange(len(self.accounts))]
        return new

    def summary(self, rng: random.Random, rid: str) -> list[dict[str, str]]:
        """Summary sections (0-5, a few of them over 20,000 characters)."""
        k = rng.choice([0, 1, 2, 3, 3, 4, 5])
        names = rng.sample(SECTION_NAMES, k)
        out = []
        for j, name in enumerate(names):
            if rng.random() < 0.03:
                parts: list[str] = []
                size = 0
                while size < 20_000:
                    s = rng.choice(SENTENCES)
                    parts.append(s)
                    size += len(s) + 1
                content = " ".join(parts)
            else:
                content = " ".join(rng.choice(SENTENCES) for _ in range(rng.randrange(1, 5)))
            out.append({"id": f"sum_{stable_hash(self.seed, rid, j, n=12)}", "name": name, "content": content})
        return out

    def extractions(self, rng: random.Random, customer: str) -> list[dict[str, Any]]:
        """Entity extractions: every value shape the API documents, mappings null, empty or set."""
        if rng.random() < 0.1:
            return []  # extraction finished but found nothing
        chosen = rng.sample(EXTRACTIONS, rng.randrange(1, 9))
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
                value = rng.choice(COMPETITORS + [None])
            elif kind == "str_list":
                value = rng.sample(PRODUCTS, rng.randrange(0, 4))
            elif kind == "date":
                value = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            elif kind == "mixed_list":
                value = [rng.choice(["ready", "needs spouse", "紧急"]), rng.randrange(1, 10), round(rng.uniform(0, 1), 2), rng.random() < 0.5, None]
                rng.shuffle(value)
            elif kind == "unicode":
                value = rng.choice(SENTENCES)
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
                    pool.append(rng.choice(ALL_MAPPINGS))
                maps = [{"crmModelName": m, "crmFieldName": f} for m, f in dict.fromkeys(pool)][:3]
            out.append({"name": name, "value": value, "mappings": maps})
        return out

    def followups(self, rng: random.Random, rid: str) -> list[dict[str, Any]]:
        """The slim followups (``id``, ``score``) the list endpoint returns: 0-3 of them."""
        return [
            {"id": f"fu_{stable_hash(self.seed, rid, 'fu', k, n=12)}", "score": rng.choice([1, 2, 3, 4, 5, round(rng.uniform(1, 5), 1)])}
            for k in range(rng.choice([0, 0, 1, 1, 2, 3]))
        ]

    def followup_detail(self, r: BaseRecording, f: dict[str, Any], processed: int) -> dict[str, Any]:
        """The full followup object GET-by-id returns: every field the schema requires."""
        rng = random.Random(f"{self.seed}:{f['id']}")
        user = next((u for u in self.users if u["userId"] == r.user_id), self.users[0])
        followup_type = rng.choice(["REHASH", "CROSS_SELL"])
        action = rng.choice([None, "Call back next week", "Send revised quote"])
        context_value = rng.choice(SENTENCES)
        starred = rng.random() < 0.2
        status = rng.choice(["TO_DO", "IN_PROGRESS", "COMPLETE"])
        # Drawn after the original fields so adding them left those values unchanged.
        note = rng.choice(SENTENCES) if rng.random() < 0.3 else None
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
