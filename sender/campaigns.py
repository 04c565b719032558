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

from . import sunset_email
from .broadcasts import Lookup
from .errors import CampaignError, InvalidInput, TemplateError
from .headers import header_text_problem
from .joining import FIELD_NAME
from .markdown_email import body_file, default_broadcasts_dir
from .schedule import StepTiming, parse_delay, parse_window
from .segments import parse_segment

ENTRY_TRIGGERS = ("confirm", "signup", "tag")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TOP_KEYS = {"window", "campaign", "entry", "steps"}
_CAMPAIGN_KEYS = {"name", "description", "exit"}
_ENTRY_KEYS = {"on", "tags", "segment"}
_STEP_KEYS = {"id", "template", "subject", "preheader", "delay", "after", "exercise", "attach_guide",
              "when", "subjects", "then", "then_when", "delay_without_date"}
_AFTER_HELP = ('use "previous" (the default), "enrol", a date field of the subscriber '
               '("field:birth_date") or a list of them (["field:birth_date", "field:due_date"]: '
               "the first one she has counts)")
END = "end"     # ``then = "end"``: the sequence ends after the step (see branches.py)


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
    when: object = None     # a segments.Segment: only who matches when it falls due gets it
    subjects: tuple = ()    # two or more for an A/B test (``subject`` is then the first)
    then: str | None = None     # a campaign id, or END: where she goes once it is sent
    then_when: object = None    # a segments.Segment: the branch is taken only if she matches
    anchors: tuple = ()     # date fields it counts from (``after = "field:birth_date"``), in order
    fallback_delay: object = None   # its delay when she has none of them (None: ``delay``)

    @property
    def timing(self):
        return StepTiming(self.id, self.delay, self.after_enrolment, self.anchors,
                          self.fallback_delay)


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
    goal: object = None  # a segments.Segment from [campaign] exit = "...": who matches is done

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

    @property
    def anchor_fields(self):
        """The date fields its steps count from, in order (empty: it has no date anchor)."""
        return tuple(dict.fromkeys(name for s in self.steps for name in s.anchors))

    def fingerprint(self):
        """A hash of what decides the schedule and who gets each step; it changes when steps,
        timing, a date anchor, a condition (``when``), a branch (``then``, ``then_when``) or the
        goal (``exit``) change. A part a campaign does not use adds nothing, so files without
        them keep their fingerprint."""
        parts = [str(self.window), self.entry_on, ",".join(self.entry_tags)]
        for s in self.steps:
            part = f"{s.id}|{s.delay}|{s.after_enrolment}"
            if s.anchors:
                part += f"|after={','.join(s.anchors)}|otherwise={s.fallback_delay}"
            if s.when is not None:
                part += f"|when={s.when}"
            if s.then:
                part += f"|then={s.then}" + (f"|then_when={s.then_when}" if s.then_when is not None
                                             else "")
            parts.append(part)
        if self.goal is not None:
            parts.append(f"exit={self.goal}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class Campaigns:
    """All loaded campaigns, by id, in file-name order. ``broken`` maps the id of each
    campaign file that did not load (a tolerant load) to its problems: its emails wait,
    they are never cancelled as if the campaign had been removed."""

    def __init__(self, campaigns, broken=None, *, broadcasts=None):
        self._by_id = {c.id: c for c in campaigns}
        self.broken = dict(broken or {})
        # Finds a broadcast by its ledger id (broadcasts.Lookup); by default in broadcasts/
        # beside the campaigns folder.
        self._broadcasts = broadcasts
        if broadcasts is None and self._by_id:
            first = next(iter(self._by_id.values())).path
            self._broadcasts = Lookup(Path(first).parent.parent / "broadcasts")

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self):
        return len(self._by_id)

    def get(self, campaign_id):
        """The campaign, the broadcast (``broadcast.NAME``) or the sunset rule's question
        (``system.sunset``, ``sunset_email.py``) with this id, or None."""
        found = self._by_id.get(campaign_id) or sunset_email.lookup(campaign_id)
        if found is None and self._broadcasts is not None:
            found = self._broadcasts(campaign_id, self.broken)
        return found

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
    known = _known_steps(directory)
    for path in sorted(directory.glob("*.toml")):
        campaign, found = load_campaign(path, templates_dir=templates_dir, known=known)
        if found and tolerant:
            broken[path.stem] = found
            continue
        problems += found
        if campaign:
            campaigns.append(campaign)
    campaigns, wrong = _check_branches(campaigns, broken, tolerant)
    problems += wrong
    signup = [c.id for c in campaigns if c.entry_on == "signup"]
    if len(signup) > 1:
        problems.append(f"{directory}: only one campaign may have entry.on = \"signup\" "
                        f"(found {', '.join(signup)})")
    if problems:
        raise CampaignError(problems)
    return Campaigns(campaigns, broken, broadcasts=Lookup(
        default_broadcasts_dir(templates_dir) if templates_dir else directory.parent / "broadcasts"))


def load_campaign(path, *, templates_dir=None, known=None):
    """Load one campaign file; returns (campaign or None, list of problems). ``known`` ({campaign
    id: its step ids}, from ``_known_steps``) checks the campaigns and steps that a ``when``
    or ``exit`` segment names."""
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
    goal = _rule_segment(meta, "exit", "campaign.exit", known, problem)

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
            entry_segment = parse_segment(entry["segment"], progress=False) \
                if isinstance(entry["segment"], str) else parse_segment("")
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
    if entry_on == "signup" and "exit" in meta:
        problem("campaign.exit", 'the confirmation campaign (entry.on = "signup") has no goal: its '
                "one email must reach whoever signed up; remove exit")

    steps, seen = [], set()
    for number, raw in enumerate(raw_steps, start=1):
        step = _load_step(raw, number, seen, templates_dir, problem, known)
        if entry_on == "signup" and isinstance(raw, dict) and "then" in raw:
            problem(f"steps[{number}].then", "the confirmation email cannot move anyone into "
                    "another campaign (whoever confirms enters the campaigns on confirm); remove then")
        if entry_on == "signup" and isinstance(raw, dict) and "when" in raw:
            problem(f"steps[{number}].when", "the confirmation email always goes to whoever "
                    "signed up (it is how she confirms); remove when")
        if step:
            steps.append(step)

    if problems:
        return None, problems
    return Campaign(
        id=campaign_id, name=name, description=meta.get("description", ""),
        entry_on=entry_on, entry_tags=tuple(tags), window=window, steps=tuple(steps),
        path=path, entry_segment=entry_segment, goal=goal,
    ), []


def _table(data, key, problem):
    value = data.get(key, {})
    if not isinstance(value, dict):
        problem(key, "must be a table")
        return {}
    return value


def _load_step(raw, number, seen, templates_dir, problem, known=None):
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
    subjects = _subjects(raw, where, problem)
    if subjects is None:
        ok = False
    for key in ("template", "subject") if "subjects" not in raw else ("template",):
        if not isinstance(raw.get(key), str) or not raw.get(key).strip():
            problem(f"{where}.{key}", "required, a non-empty string")
            ok = False
    for key in ("subject", "preheader"):
        found = header_text_problem(raw[key]) if isinstance(raw.get(key), str) else None
        if found:
            problem(f"{where}.{key}", "must be on one line" if "line break" in found else found)
            ok = False
    template = raw.get("template")
    if ok and templates_dir is not None:
        try:       # emails/T.html or emails/T.md (not both), or @broadcasts/NAME
            body_file(templates_dir, template)
        except TemplateError as exc:
            problem(f"{where}.template", str(exc))
            ok = False
    try:
        delay = parse_delay(raw.get("delay", "0"))
    except InvalidInput as exc:
        problem(f"{where}.delay", str(exc))
        ok = False
    after = raw.get("after", "previous")
    anchors = () if isinstance(after, str) and after in ("previous", "enrol", "enrolment") \
        else _anchors(after, f"{where}.after", problem)
    fallback = _fallback(raw, anchors, where, problem)
    if anchors is None or fallback is False:
        ok = False
    exercise = raw.get("exercise", False)
    if not isinstance(exercise, bool):
        problem(f"{where}.exercise", "must be true or false")
        ok = False
    attach_guide = raw.get("attach_guide")
    if attach_guide is not None and not isinstance(attach_guide, bool):
        problem(f"{where}.attach_guide", "must be true or false")
        ok = False
    when = _rule_segment(raw, "when", f"{where}.when", known, problem)
    if "when" in raw and when is None:
        ok = False
    then, then_when, branch_ok = _branch(raw, where, known, problem)
    ok = ok and branch_ok
    if not ok:
        return None
    return Step(
        id=step_id, number=number, template=template,
        subject=subjects[0] if subjects else raw["subject"],
        preheader=raw.get("preheader", ""), delay=delay,
        after_enrolment=after in ("enrol", "enrolment") or number == 1, exercise=exercise,
        attach_guide=attach_guide, when=when, subjects=subjects, then=then, then_when=then_when,
        anchors=anchors, fallback_delay=fallback,
    )


# --- date anchors: after = "field:birth_date" (the arithmetic: schedule.due_times) -----------
def _anchors(after, key, problem):
    """The date fields of ``after = "field:NAME"`` or of a list of them, as a tuple; None
    (the problem reported) for anything else."""
    items = [after] if isinstance(after, str) else after
    if not isinstance(items, list) or not items:
        problem(key, _AFTER_HELP)
        return None
    names = []
    for item in items:
        kind, _, name = item.partition(":") if isinstance(item, str) else ("", "", "")
        if kind != "field" or not FIELD_NAME.fullmatch(name):
            problem(key, f"{item!r} is not a date field: {_AFTER_HELP}")
            return None
        if name in names:
            problem(key, f"{item!r} is given twice")
            return None
        names.append(name)
    return tuple(names)


def _fallback(raw, anchors, where, problem):
    """The ``delay_without_date`` of a step with a date anchor: a Delay, None when not given,
    False when wrong (the problem reported)."""
    if "delay_without_date" not in raw:
        return None
    key = f"{where}.delay_without_date"
    if anchors is not None and not anchors:
        problem(key, 'goes with a date anchor (after = "field:birth_date"): it is the delay for '
                "a subscriber without the date")
        return False
    try:
        return parse_delay(raw["delay_without_date"])
    except InvalidInput as exc:
        problem(key, str(exc))
        return False


# --- the keys of issue 13: when, exit, subjects (the rules themselves: step_rules.py) -------
def _subjects(raw, where, problem):
    """The A/B subjects of a step as a tuple (empty without ``subjects``), or None when the
    key is wrong (each problem reported)."""
    if "subjects" not in raw:
        return ()
    key, value = f"{where}.subjects", raw["subjects"]
    if "subject" in raw:
        problem(key, "give either subject or subjects, not both")
        return None
    if not isinstance(value, list):
        problem(key, 'must be a list of subjects, e.g. subjects = ["First idea", "Second idea"]')
        return None
    if len(value) < 2:
        problem(key, "an A/B test needs at least two subjects (for one, use subject = \"...\")")
        return None
    ok = True
    if not all(isinstance(v, str) and v.strip() for v in value):
        problem(key, "each subject must be a non-empty string")
        ok = False
    for number, text in enumerate(value, 1):
        found = header_text_problem(text) if isinstance(text, str) else None
        if found:
            problem(key, "each subject must be on one line" if "line break" in found
                    else f"subject {number} {found}")
            ok = False
    texts = [v for v in value if isinstance(v, str)]
    for text in sorted({v for v in texts if v.strip() and texts.count(v) > 1}):
        problem(key, f"{text!r} is given twice: each variant must differ")
        ok = False
    return tuple(value) if ok else None


def _branch(raw, where, known, problem):
    """The ``then`` and ``then_when`` of a step: (target or None, segment or None, ok). The
    checks that need every file (a cycle, a branch into the confirmation campaign) are in
    ``_check_branches``."""
    if "then" not in raw:
        if "then_when" in raw:
            problem(f"{where}.then_when", "only goes with then = \"CAMPAIGN\" or then = \"end\": "
                    "add then, or remove then_when")
            return None, None, False
        return None, None, True
    target, key = raw["then"], f"{where}.then"
    if not isinstance(target, str) or not (target == END or _ID.fullmatch(target)):
        problem(key, 'the id of a campaign (its file name without .toml), or "end"')
        return None, None, False
    if target != END and known is not None and target not in known:
        problem(key, f"there is no campaign {target!r} (the campaign id is its file name; see "
                "`drip campaigns`)")
        return None, None, False
    then_when = _rule_segment(raw, "then_when", f"{where}.then_when", known, problem)
    return target, then_when, "then_when" not in raw or then_when is not None


def _check_branches(campaigns, broken, tolerant):
    """The checks of ``then`` that need every campaign: no branch into the confirmation
    campaign, and no cycle (A then B then A): a subscriber enters each campaign once, so a
    cycle could never do what it reads as. Returns (the campaigns that pass, problems); with
    ``tolerant`` a campaign that fails goes to ``broken`` instead (its emails wait), and so
    does one whose target is broken."""
    by_id = {c.id: c for c in campaigns}
    wrong = {}
    for campaign in campaigns:
        for step in campaign.steps:
            target = by_id.get(step.then)
            if target is not None and target.entry_on == "signup":
                wrong.setdefault(campaign.id, []).append(
                    f"{campaign.path}: steps[{step.number}].then: {step.then!r} is the confirmation "
                    "campaign: nobody is moved into it")
    for cycle in _cycles(by_id):
        first = by_id[cycle[0]]
        step = next(s for s in first.steps if s.then == cycle[1 % len(cycle)])
        path = " then ".join([*cycle, cycle[0]])
        wrong.setdefault(first.id, []).append(
            f"{first.path}: steps[{step.number}].then: the branches loop ({path}); a subscriber "
            "enters each campaign once, so a loop cannot send her back: remove one of them")
    if not tolerant:
        return campaigns, [p for found in wrong.values() for p in found]
    broken.update(wrong)
    while True:       # a campaign that branches into one that does not load waits with it
        left = [c for c in campaigns if c.id not in broken]
        waiting = {c.id: [f"{c.path}: its branch target {s.then!r} does not load; its emails wait "
                          "for the fix"] for c in left for s in c.steps
                   if s.then not in (None, END) and s.then in broken}
        if not waiting:
            return left, []
        broken.update(waiting)


def _cycles(by_id):
    """Each loop of branches once, as the campaign ids in order from the smallest."""
    found = []

    def walk(path):
        for step in by_id[path[-1]].steps:
            target = step.then
            if target not in by_id:
                continue
            if target in path:
                loop = path[path.index(target):]
                start = loop.index(min(loop))
                loop = loop[start:] + loop[:start]
                if loop not in found:
                    found.append(loop)
            else:
                walk([*path, target])

    for campaign_id in by_id:
        walk([campaign_id])
    return found


def _rule_segment(table, name, key, known, problem):
    """The segment of ``when`` or ``exit`` (None when absent or wrong, each problem reported);
    with ``known``, every campaign and step its terms name must exist."""
    if name not in table:
        return None
    text = table[name]
    try:
        segment = parse_segment(text if isinstance(text, str) else "")
    except InvalidInput as exc:
        problem(key, str(exc))
        return None
    wrong = [_unknown_target(term, known) for term in segment.terms] if known is not None else []
    for message in filter(None, wrong):
        problem(key, message)
    return None if any(wrong) else segment


def _unknown_target(term, known):
    if term.kind not in ("campaign", "clicked") or term.key.startswith("broadcast."):
        return None
    shown = f"{term.kind}:{term.key}" + (f"/{term.value}" if term.kind == "clicked" and term.value
                                         else "")
    if term.key not in known:
        return (f"{shown}: there is no campaign {term.key!r} (the campaign id is its file name; "
                f"see `drip campaigns`)")
    if term.kind == "clicked" and term.value and term.value not in known[term.key]:
        return f"{shown}: campaign {term.key!r} has no step {term.value!r}"
    return None


def _known_steps(directory):
    """{campaign id: its step ids} for every file in ``directory``, read leniently (a broken
    file's problems are reported by its own load)."""
    known = {}
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            steps = tomllib.loads(path.read_text(encoding="utf-8")).get("steps")
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            steps = None
        known[path.stem] = {s.get("id") for s in steps if isinstance(s, dict)} \
            if isinstance(steps, list) else set()
    return known
