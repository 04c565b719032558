"""Campaign files: load ``campaigns/*.toml`` and validate every key.

A campaign's id is its file name without ``.toml``. Loading reports every
problem at once, each naming the file and the key, so the coach can fix a
file in one pass.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import CampaignError, InvalidInput
from .schedule import StepTiming, parse_delay, parse_window
from .segments import parse_segment

ENTRY_TRIGGERS = ("confirm", "signup", "tag")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TOP_KEYS = {"window", "campaign", "entry", "steps"}
_CAMPAIGN_KEYS = {"name", "description"}
_ENTRY_KEYS = {"on", "tags", "segment"}
_STEP_KEYS = {"id", "template", "subject", "preheader", "delay", "after", "exercise", "attach_guide"}


@dataclass(frozen=True)
class Step:
    id: str
    number: int
    template: str
    subject: str
    preheader: str
    delay: object
    after_enrolment: bool = False
    exercise: bool = False
    attach_guide: bool | None = None   # None: the welcome email of a confirm campaign (guide.py)

    @property
    def timing(self):
        return StepTiming(self.id, self.delay, self.after_enrolment)


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    description: str
    entry_on: str
    entry_tags: tuple
    window: object  # a Window, or None for the DRIP_SEND_WINDOW default
    steps: tuple
    path: Path
    entry_segment: object = None  # a segments.Segment from [entry] segment = "...", or None

    def step(self, step_id):
        return next((s for s in self.steps if s.id == step_id), None)

    def timings(self):
        return [s.timing for s in self.steps]

    def window_or(self, default):
        return self.window if self.window is not None else default

    def accepts(self, subscriber):
        """Whether a subscriber with these tags (and in the entry segment) may enter."""
        if self.entry_segment is not None and not self.entry_segment.matches(subscriber):
            return False
        return not self.entry_tags or bool(set(self.entry_tags) & set(subscriber.tags))

    def fingerprint(self):
        """A hash of what decides the schedule; it changes when steps or timing change."""
        parts = [str(self.window), self.entry_on, ",".join(self.entry_tags)]
        parts += [f"{s.id}|{s.delay}|{s.after_enrolment}" for s in self.steps]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class Campaigns:
    """All loaded campaigns, by id, in file-name order. ``broken`` maps the id of each
    campaign file that did not load (a tolerant load) to its problems: its emails wait,
    they are never cancelled as if the campaign had been removed."""

    def __init__(self, campaigns, broken=None):
        self._by_id = {c.id: c for c in campaigns}
        self.broken = dict(broken or {})

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self):
        return len(self._by_id)

    def get(self, campaign_id):
        return self._by_id.get(campaign_id)

    @property
    def confirmation(self):
        """The campaign that sends the double opt-in email, or None."""
        return next((c for c in self if c.entry_on == "signup"), None)

    def entered_on(self, trigger, subscriber):
        return [c for c in self if c.entry_on == trigger and c.accepts(subscriber)]


def load_campaigns(directory, *, templates_dir=None, tolerant=False):
    """Load and validate every ``*.toml`` in ``directory``; raise CampaignError listing
    every problem found. With ``tolerant`` (what sending uses) a campaign file with
    problems is left out and listed in ``Campaigns.broken`` instead, so one broken file
    does not stop every other campaign's mail; a missing folder or two signup campaigns
    still raise."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CampaignError([f"{directory}: campaigns folder not found "
                             "(set DRIP_CAMPAIGNS_DIR or create the folder)"])
    campaigns, problems, broken = [], [], {}
    for path in sorted(directory.glob("*.toml")):
        campaign, found = load_campaign(path, templates_dir=templates_dir)
        if found and tolerant:
            broken[path.stem] = found
            continue
        problems += found
        if campaign:
            campaigns.append(campaign)
    signup = [c.id for c in campaigns if c.entry_on == "signup"]
    if len(signup) > 1:
        problems.append(f"{directory}: only one campaign may have entry.on = \"signup\" "
                        f"(found {', '.join(signup)})")
    if problems:
        raise CampaignError(problems)
    return Campaigns(campaigns, broken)


def load_campaign(path, *, templates_dir=None):
    """Load one campaign file; returns (campaign or None, list of problems)."""
    path = Path(path)
    problems = []

    def problem(key, message):
        problems.append(f"{path}: {key}: {message}" if key else f"{path}: {message}")

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{path}: not valid TOML: {exc}"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot read: {exc}"]

    campaign_id = path.stem
    if not _ID.fullmatch(campaign_id):
        problem("", "the file name is the campaign id: use lowercase letters, digits, - and _")
    for key in sorted(set(data) - _TOP_KEYS):
        problem(key, f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")

    meta = _table(data, "campaign", problem)
    for key in sorted(set(meta) - _CAMPAIGN_KEYS):
        problem(f"campaign.{key}", "unknown key")
    name = meta.get("name", campaign_id)
    if not isinstance(name, str) or not name.strip():
        problem("campaign.name", "must be a non-empty string")

    entry = _table(data, "entry", problem)
    for key in sorted(set(entry) - _ENTRY_KEYS):
        problem(f"entry.{key}", "unknown key")
    entry_on = entry.get("on", "confirm")
    if entry_on not in ENTRY_TRIGGERS:
        problem("entry.on", f"{entry_on!r} is not one of {', '.join(ENTRY_TRIGGERS)}")
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        problem("entry.tags", "must be a list of tag names")
        tags = []
    if entry_on == "tag" and not tags:
        problem("entry.tags", 'entry.on = "tag" needs at least one tag')
    entry_segment = None
    if "segment" in entry:
        try:
            entry_segment = parse_segment(entry["segment"]) if isinstance(entry["segment"], str) \
                else parse_segment("")
        except InvalidInput as exc:
            problem("entry.segment", str(exc))

    window = None
    if "window" in data:
        try:
            window = parse_window(data["window"])
        except InvalidInput as exc:
            problem("window", str(exc))

    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problem("steps", "add at least one [[steps]] table")
        raw_steps = []
    if entry_on == "signup" and len(raw_steps) != 1:
        problem("steps", 'the confirmation campaign (entry.on = "signup") has exactly one step')

    steps, seen = [], set()
    for number, raw in enumerate(raw_steps, start=1):
        step = _load_step(raw, number, seen, templates_dir, problem)
        if step:
            steps.append(step)

    if problems:
        return None, problems
    return Campaign(
        id=campaign_id, name=name, description=meta.get("description", ""),
        entry_on=entry_on, entry_tags=tuple(tags), window=window, steps=tuple(steps),
        path=path, entry_segment=entry_segment,
    ), []


def _table(data, key, problem):
    value = data.get(key, {})
    if not isinstance(value, dict):
        problem(key, "must be a table")
        return {}
    return value


def _load_step(raw, number, seen, templates_dir, problem):
    where = f"steps[{number}]"
    if not isinstance(raw, dict):
        problem(where, "must be a table ([[steps]])")
        return None
    ok = True
    for key in sorted(set(raw) - _STEP_KEYS):
        problem(f"{where}.{key}", f"unknown key (expected {', '.join(sorted(_STEP_KEYS))})")
        ok = False
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not _ID.fullmatch(step_id):
        problem(f"{where}.id", "required: lowercase letters, digits, - and _")
        ok = False
    elif step_id in seen:
        problem(f"{where}.id", f"{step_id!r} is used by an earlier step")
        ok = False
    else:
        seen.add(step_id)
    for key in ("template", "subject"):
        if not isinstance(raw.get(key), str) or not raw.get(key).strip():
            problem(f"{where}.{key}", "required, a non-empty string")
            ok = False
    if any(c in str(raw.get("subject", "")) for c in "\r\n"):
        problem(f"{where}.subject", "must be on one line")
        ok = False
    template = raw.get("template")
    if ok and templates_dir is not None:
        if not (Path(templates_dir) / "emails" / f"{template}.html").is_file():
            problem(f"{where}.template",
                    f"{template!r}: no file {Path(templates_dir) / 'emails' / (template + '.html')}")
            ok = False
    try:
        delay = parse_delay(raw.get("delay", "0"))
    except InvalidInput as exc:
        problem(f"{where}.delay", str(exc))
        ok = False
    after = raw.get("after", "previous")
    if after not in ("previous", "enrol", "enrolment"):
        problem(f"{where}.after", 'use "previous" (the default) or "enrol"')
        ok = False
    exercise = raw.get("exercise", False)
    if not isinstance(exercise, bool):
        problem(f"{where}.exercise", "must be true or false")
        ok = False
    attach_guide = raw.get("attach_guide")
    if attach_guide is not None and not isinstance(attach_guide, bool):
        problem(f"{where}.attach_guide", "must be true or false")
        ok = False
    if not ok:
        return None
    return Step(
        id=step_id, number=number, template=template, subject=raw["subject"],
        preheader=raw.get("preheader", ""), delay=delay,
        after_enrolment=after in ("enrol", "enrolment") or number == 1, exercise=exercise,
        attach_guide=attach_guide,
    )
