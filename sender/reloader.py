"""Hot reload: a running `drip worker` or web app picks up edited campaigns and templates.

``Reloader`` holds the last good campaigns and templates. ``current()`` looks at the two
folders (DRIP_CAMPAIGNS_DIR, DRIP_TEMPLATES_DIR) at most once per ``every`` on its clock:
a fingerprint of every file's name, size, modification time and inode, so nothing is read
while nothing changed. When the fingerprint changed, both are loaded again and what changed
is logged (campaigns added, removed or edited; templates changed). A broken edit is refused
and logged with its file and line, and the last good version stays in use until the files
are fixed: a campaign file that does not load, or a template that no longer compiles.
Templates are compiled when loaded (``render.load_environment``), so the files on disk
never reach an email between two looks.

The worker looks before every run; the web app at most once a second of its clock.
"""

from __future__ import annotations

import logging
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from .campaigns import Campaigns, load_campaigns
from .errors import CampaignError, TemplateError
from .helpers import template_globals
from .render import load_environment

log = logging.getLogger("drip.reload")
# A reload, or a refused edit, is worth a line in the log without --debug.
log.setLevel(logging.INFO)


@dataclass(frozen=True)
class Loaded:
    """One consistent set: the campaigns, the templates they use, and the files they came from."""

    campaigns: object
    templates: object
    stamp: dict
    broken: dict = field(default_factory=dict)   # template name -> why it does not compile


def fingerprint(*folders):
    """{path: (size, mtime_ns, inode)} of every file under ``folders``: cheap (no file is
    read), and different after a file is saved, added, removed or renamed."""
    stamps = {}
    for folder in folders:
        for path in Path(folder).rglob("*"):
            try:
                info = path.stat()
            except OSError:         # removed while we looked: the next look sees it gone
                continue
            if stat.S_ISREG(info.st_mode):
                stamps[str(path)] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return stamps


def load(settings, stamp, *, tolerant=False):
    """A Loaded from the folders as they are now; CampaignError when a campaign file is
    broken (templates that do not compile are listed in ``broken``). ``tolerant`` (at
    start, when there is no last good version) leaves a broken campaign file out instead,
    in ``campaigns.broken``, so the other campaigns send."""
    loaded = []      # the campaigns, for the templates' guide_attached()
    templates, broken = load_environment(
        settings.templates_dir,
        globals=template_globals(settings, lambda: loaded[0] if loaded else None))
    campaigns = load_campaigns(settings.campaigns_dir, templates_dir=settings.templates_dir,
                               tolerant=tolerant)
    loaded.append(campaigns)
    return Loaded(campaigns, templates, stamp, broken)


class Reloader:
    """The campaigns and templates a long-running process uses, reloaded when edited.

    ``clock()`` gives the time and ``every`` the least time between two looks at the files,
    in the clock's units (None: look at every call). At start there is no last good version:
    a broken campaign file is left out (logged; its emails wait) and the others load;
    templates that do not compile at start are logged, and their emails wait."""

    def __init__(self, settings, *, clock=time.monotonic, every=1.0):
        self.settings, self.clock, self.every = settings, clock, every
        self.folders = (Path(settings.campaigns_dir), Path(settings.templates_dir))
        self.loaded = load(settings, fingerprint(*self.folders), tolerant=True)
        for problem in self.loaded.broken.values():
            log.error("%s (emails that use it wait until it is fixed)", problem)
        for problems in self.loaded.campaigns.broken.values():
            for problem in problems:
                log.error("campaign file left out until fixed (its emails wait): %s",
                          _with_line(problem))
        self._looked_at = clock()
        self._refused = None        # the fingerprint of a broken edit already reported

    def current(self):
        """The Loaded to use now, after loading the files again if they changed."""
        now = self.clock()
        if self.every is not None and abs(now - self._looked_at) < self.every:
            return self.loaded
        self._looked_at = now
        stamp = fingerprint(*self.folders)
        if stamp in (self.loaded.stamp, self._refused):
            return self.loaded
        try:
            fresh = load(self.settings, stamp, tolerant=True)
            problems = [why for name, why in fresh.broken.items() if name not in self.loaded.broken]
        except CampaignError as exc:        # the folder is gone, or two signup campaigns
            fresh, problems = None, [_with_line(text) for text in exc.problems]
        except TemplateError as exc:        # the templates folder is gone
            fresh, problems = None, [str(exc)]
        if fresh is not None:
            # A broken campaign file keeps its last good version; the other edits go live.
            broken_campaigns = fresh.campaigns.broken
            fresh, kept_old = self._keep_last_good(fresh)
            problems += [_with_line(text) for cid in kept_old
                         for text in broken_campaigns.get(cid, ())]
        if problems and (fresh is None or any(
                name not in self.loaded.broken for name in fresh.broken)):
            self._refused = stamp
            for problem in problems:      # every one, not just the first
                log.error("edit refused, still using the last good version: %s", problem)
            return self.loaded
        for problem in problems:
            log.error("edit refused for this file, still using its last good version: %s",
                      problem)
        changes = describe(self.loaded, fresh, self.settings.templates_dir)
        self.loaded, self._refused = fresh, None
        log.info("reloaded %s: %s", ", ".join(str(f) for f in self.folders),
                 "; ".join(changes) or "the files were touched, nothing changed")
        return self.loaded

    def _keep_last_good(self, fresh):
        """``fresh`` with each campaign whose file broke since the last load replaced by its
        last good version; returns it and the ids kept that way."""
        kept = {cid: self.loaded.campaigns.get(cid) for cid in fresh.campaigns.broken
                if self.loaded.campaigns.get(cid) is not None}
        if not kept:
            return fresh, []
        campaigns = sorted([*fresh.campaigns, *kept.values()], key=lambda c: c.id)
        still_broken = {cid: found for cid, found in fresh.campaigns.broken.items()
                        if cid not in kept}
        merged = Campaigns(campaigns, still_broken)
        return Loaded(merged, fresh.templates, fresh.stamp, fresh.broken), sorted(kept)

    def apply(self, drip):
        """Give ``drip`` the current campaigns and templates (reloading first if edited)."""
        loaded = self.current()
        drip.__dict__.update(campaigns=loaded.campaigns, templates=loaded.templates)
        return loaded


def describe(old, new, templates_dir):
    """What changed from ``old`` to ``new``, one short phrase each."""
    before = {c.id: c for c in old.campaigns}
    after = {c.id: c for c in new.campaigns}
    changes = [f"campaign added: {i}" for i in after if i not in before]
    changes += [f"campaign removed: {i} (its scheduled emails are cancelled as they fall due)"
                for i in before if i not in after]
    changes += [f"campaign edited: {i}" for i in after if i in before and after[i] != before[i]]
    root = Path(templates_dir)
    touched = sorted(Path(p).relative_to(root).as_posix()
                     for p in set(old.stamp) | set(new.stamp)
                     if old.stamp.get(p) != new.stamp.get(p) and Path(p).is_relative_to(root))
    if touched:
        changes.append(f"templates changed: {', '.join(touched)}")
    return changes


def _with_line(problem):
    """A campaign problem ('campaigns/x.toml: steps[2].delay: ...') with the key's line."""
    from .checks import _toml_line  # checks pulls in the content tooling: only when needed

    path, sep, rest = problem.partition(": ")
    line = _toml_line(path, rest.split(":", 1)[0]) if sep else 0
    return f"{path}, line {line}: {rest}" if line else problem
