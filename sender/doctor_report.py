"""What `drip doctor` finds: each finding a ``Check`` (a status, plain words, and where
something is missing the exact record or setting to add), gathered in a ``Report``. The
DNS, web and provider checks (``doctor.py``, ``doctor_web.py``, ``doctor_providers.py``)
all speak this."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

@dataclass
class Check:
    id: str
    status: str
    title: str
    detail: str
    fix: str = ""          # the exact record or setting to add, when something is missing

    def to_dict(self):
        return asdict(self)


@dataclass
class Report:
    checks: list = field(default_factory=list)

    @property
    def ok(self):
        return not any(c.status == FAIL for c in self.checks)

    def by_id(self, ident):
        return [c for c in self.checks if c.id == ident]

    def to_dict(self):
        counts = {s: sum(c.status == s for c in self.checks) for s in (OK, WARN, FAIL, SKIP)}
        return {"ok": self.ok, "counts": counts, "checks": [c.to_dict() for c in self.checks]}
