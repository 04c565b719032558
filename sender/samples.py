"""Sample subscribers for previews, test sends and ``drip check``.

Between them they cover what templates branch on: a name and none, a long
non-ASCII name (for headers and wrapping), and the ``stage`` field
("pregnant", "postpartum", or not given).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .models import Subscriber


@dataclass(frozen=True)
class Sample:
    key: str            # used in file names: build/preview/<campaign>.<step>.<key>.html
    label: str          # shown in the preview
    subscriber: Subscriber


def _person(key, email, name, **fields):
    return Subscriber(id=0, uid=f"sample-{key}", email=email, name=name, timezone=None,
                      status="active", tags=[], fields=dict(fields))


SAMPLES = (
    Sample("ana-postpartum", "Ana, postpartum",
           _person("ana-postpartum", "ana@example.com", "Ana Souza", stage="postpartum")),
    Sample("no-name-pregnant", "No name, pregnant",
           _person("no-name-pregnant", "pregnant@example.com", "", stage="pregnant")),
    Sample("long-name", "Long non-ASCII name, postpartum",
           _person("long-name", "zoe@example.com",
                   "Zoë-Maëlle Nguyễn Thị Ánh Þórhildur Włodarczyk-Øyen de la Cruz-Sánchez",
                   stage="postpartum")),
    Sample("no-stage", "Name, stage not given",
           _person("no-stage", "sam@example.com", "Sam")),
)


def get_sample(key):
    return next((s for s in SAMPLES if s.key == key), None)


def sample_for(email, sample=SAMPLES[0]):
    """``sample`` with its address replaced (a test send to ``email``)."""
    return replace(sample, subscriber=replace(sample.subscriber, email=email))
