"""Broadcast files: load ``broadcasts/*.md`` and check every key of their front matter.

A broadcast is one email to a segment of the list, written in Markdown with a small TOML
front matter (``front_matter.py``)::

    +++
    subject = "A workshop in Bellevue on 21 March"
    preheader = "Two hours on the floor, small group, bring a mat."
    segment = "tag:local"            # who gets it; omit for every active subscriber
    when = "Tue 09:00 local"         # or "2026-03-10 09:00 America/Los_Angeles"; or give it
                                     # to `drip broadcast schedule` instead
    archive = true                   # false: never shown in the public archive
    +++

    Hi {{ subscriber.first_name or "there" }}, ...

Its name is the file name without ``.md``. Loading reports every problem at once, each with
the file and the key, as ``campaigns.py`` does.

To the engine a broadcast is a one-step campaign (``Broadcast`` has what compose, dispatch,
hand-off, recovery and the ledger read of a ``Campaign``): its deliveries are ordinary ledger
rows of campaign ``broadcast.NAME``, step ``send``. A campaign file's id never holds a dot,
so the two can never collide, and ``broadcast.NAME.send.UID`` is a valid Message-ID local
part. Its body is the template ``@broadcasts/NAME`` (``markdown_email.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .broadcast_schedule import parse_when
from .errors import DripError, InvalidInput, NotFound
from .front_matter import split
from .headers import header_text_problem
from .markdown_email import BROADCASTS, default_broadcasts_dir
from .schedule import Delay
from .segments import parse_segment

PREFIX = "broadcast."          # the ledger's campaign id of a broadcast: PREFIX + NAME
STEP = "send"
ENTRY = "broadcast"            # its ``entry_on``: never a trigger; its stream is marketing
KEYS = ("subject", "preheader", "segment", "when", "archive", "title")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_DATED = re.compile(r"\d{4}-\d{2}-\d{2}-")


def campaign_id(name):
    return PREFIX + name


def name_of(campaign):
    """The broadcast name in a ledger campaign id, or None for a sequence's id."""
    return campaign[len(PREFIX):] if campaign.startswith(PREFIX) else None


def folder(settings):
    """Where the broadcast files are: ``broadcasts/`` beside the templates folder."""
    return Path(getattr(settings, "broadcasts_dir", None)
                or default_broadcasts_dir(settings.templates_dir))


@dataclass(frozen=True)
class BroadcastStep:
    """The one step of a broadcast, with what compose and the checks read of a ``Step``."""

    template: str
    subject: str
    preheader: str
    id: str = STEP
    number: int = 1
    delay: Delay = Delay()
    after_enrolment: bool = True
    exercise: bool = False
    attach_guide: bool = False


@dataclass(frozen=True)
class Broadcast:
    slug: str                   # its name: the file name without .md
    name: str                   # its title (front matter ``title``, else from the file name)
    subject: str
    preheader: str
    segment: object             # a segments.Segment, or None: every active subscriber
    when: object                # a broadcast_schedule Moment or LocalTime, or None
    archive: bool
    path: Path
    body: str = field(repr=False, default="")
    # What a Campaign has and a broadcast does not need.
    entry_on = ENTRY
    entry_tags = ()
    entry_segment = None
    window = None               # DRIP_SEND_WINDOW, for a min-gap deferral only
    description = ""

    @property
    def id(self):
        return campaign_id(self.slug)

    @property
    def steps(self):
        return (BroadcastStep(BROADCASTS + self.slug, self.subject, self.preheader),)

    def step(self, step_id):
        return self.steps[0] if step_id == STEP else None

    def timings(self):
        return []

    def window_or(self, default):
        return default

    def accepts(self, subscriber):
        return False            # nobody enters a broadcast as they enter a sequence


def _title(name):
    words = _DATED.sub("", name, count=1).replace("-", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def load_broadcast(path):
    """Load one broadcast file; returns (Broadcast or None, list of problems)."""
    path = Path(path)
    problems = []

    def problem(key, message):
        problems.append(f"{path}: {key}: {message}" if key else f"{path}: {message}")

    try:
        data, body = split(path.read_bytes(), path)
    except DripError as exc:
        return None, [str(exc)]
    except OSError as exc:
        return None, [f"{path}: cannot read: {exc.strerror or exc}"]
    name = path.stem
    if not _NAME.fullmatch(name):
        problem("", "the file name is the broadcast's name: use lowercase letters, digits, - and _"
                " (e.g. 2026-03-10-bellevue-workshop.md)")
    for key in sorted(set(data) - set(KEYS)):
        problem(key, f"unknown key (expected one of {', '.join(KEYS)})")
    texts = {}
    for key, required in (("subject", True), ("preheader", False), ("title", False)):
        value = data.get(key, "" if not required else None)
        if not isinstance(value, str) or (required and not value.strip()):
            problem(key, "required, a non-empty string" if required else "must be a string")
        elif header_text_problem(value):
            found = header_text_problem(value)
            problem(key, "must be on one line" if "line break" in found else found)
        else:
            texts[key] = value
    segment = None
    if "segment" in data:
        if not isinstance(data["segment"], str):
            problem("segment", 'must be a string, e.g. "tag:postpartum"')
        elif data["segment"].strip():
            try:
                segment = parse_segment(data["segment"])
            except InvalidInput as exc:
                problem("segment", str(exc))
    when = None
    if "when" in data:
        try:
            when = parse_when(data["when"]) if isinstance(data["when"], str) else parse_when("")
        except InvalidInput as exc:
            problem("when", str(exc))
    archive = data.get("archive", True)
    if not isinstance(archive, bool):
        problem("archive", "must be true or false")
    if not body.strip():
        problem("", "the email has no text below its front matter")
    if problems:
        return None, problems
    return Broadcast(slug=name, name=texts.get("title") or _title(name), subject=texts["subject"],
                     preheader=texts.get("preheader", ""), segment=segment, when=when,
                     archive=archive, path=path, body=body), []


def load(settings, name):
    """The broadcast ``name`` (a file name, with or without .md); NotFound lists what there
    is, and a file with problems raises them all (InvalidInput)."""
    name = Path(str(name)).name.removesuffix(".md")
    path = folder(settings) / f"{name}.md"
    if not _NAME.fullmatch(name) or not path.is_file():
        known = ", ".join(p.stem for p in sorted(folder(settings).glob("*.md"))) or "none yet"
        raise NotFound(f"no broadcast {name!r} in {folder(settings)} (there: {known}); "
                       "`drip broadcast new TITLE` writes one")
    broadcast, problems = load_broadcast(path)
    if problems:
        raise InvalidInput("\n".join(problems))
    return broadcast


def load_all(settings):
    """Every broadcast file: (broadcasts, {name: problems}) for the ones that do not load."""
    found, broken = [], {}
    directory = folder(settings)
    for path in sorted(directory.glob("*.md")) if directory.is_dir() else ():
        broadcast, problems = load_broadcast(path)
        if problems:
            broken[path.stem] = problems
        else:
            found.append(broadcast)
    return found, broken


class Lookup:
    """``Campaigns.get`` for a broadcast's campaign id: the file, loaded when first asked
    for and again when it changes. A file that is there but does not load is put in
    ``broken`` (its emails wait, they are not cancelled as removed)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self._kept = {}

    def __call__(self, campaign, broken):
        name = name_of(campaign)
        if name is None or not _NAME.fullmatch(name):
            return None
        path = self.directory / f"{name}.md"
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        kept = self._kept.get(name)
        if kept is None or kept[0] != stamp:
            kept = self._kept[name] = (stamp, *load_broadcast(path))
        _, broadcast, problems = kept
        if problems:
            broken[campaign] = problems
            return None
        broken.pop(campaign, None)
        return broadcast


def new_file(settings, title, *, today):
    """Write ``broadcasts/YYYY-MM-DD-title.md`` with a starter front matter; returns its path.
    An existing file is never overwritten (InvalidInput)."""
    if not str(title).strip() or any(ord(c) < 32 for c in str(title)):
        raise InvalidInput("give the broadcast a title on one line, e.g. "
                           '`drip broadcast new "Bellevue workshop"`')
    slug = re.sub(r"[^a-z0-9]+", "-", str(title).lower()).strip("-")[:60].strip("-") or "broadcast"
    directory = folder(settings)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{date.isoformat(today)}-{slug}.md"
    if path.exists():
        raise InvalidInput(f"{path} exists already; edit it, or choose another title")
    subject = " ".join(str(title).split()).replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(STARTER.format(subject=subject), encoding="utf-8")
    return path


STARTER = """+++
subject = "{subject}"
preheader = ""
# segment = "tag:postpartum"     # who gets it; leave it out for every active subscriber
# when = "Tue 09:00 local"       # or "2026-03-10 09:00 America/Los_Angeles"
archive = true                   # false keeps it out of the public archive
+++

Hi {{{{ subscriber.first_name or "there" }}}},

Write the email here in Markdown: **bold**, *italic*, [a link](https://example.com),
lists with "- ". The layout, the unsubscribe link and your postal address are added for you.
"""
