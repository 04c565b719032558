"""``drip preview``: every email of every campaign, for every sample subscriber, as a local site.

``build_site`` writes into one folder:

* ``<campaign>.<step>.<sample>.html``, ``.txt`` and ``.headers.txt``: the two
  parts and the headers of each message, exactly as ``compose`` makes them, except
  that the pictures load from ``assets/`` beside them (``drip assets publish`` writes
  it), so the preview shows them without a server;
* ``index.html`` (the first sample) and ``index-<sample>.html`` (the others):
  the sequence as a timeline for someone who signs up at ``signup``, then each
  email with its subject, preheader, the HTML at desktop (600 px) and phone
  (375 px) width, the plain text and the headers.

``serve`` serves the folder on localhost and rebuilds it when a template or a
campaign file changes; ``send_test`` sends one email, marked as a test, to
one address through the configured provider.
"""

from __future__ import annotations

import functools
import http.server
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jinja2

from . import campaign_graph, images
from .compose import compose, template_context
from .errors import DripError, NotFound
from .message import normalize_email
from .models import Enrollment
from .ports import listen_error
from .reloader import fingerprint
from .samples import SAMPLES, sample_for
from .sequence import planned_times, subscriber_zone

log = logging.getLogger(__name__)

DEFAULT_PORT = 8026        # not `drip serve`'s 8025: both may run at once
DESKTOP_WIDTH = 600
PHONE_WIDTH = 375


@dataclass
class PreviewEmail:
    campaign: object
    step: object
    sample: object
    message: object
    preheader: str

    @property
    def name(self):
        return f"{self.campaign.id}.{self.step.id}.{self.sample.key}"

    @property
    def anchor(self):
        return f"{self.campaign.id}-{self.step.id}"


@dataclass
class TimelineRow:
    campaign: object
    step: object
    due_at: datetime
    local: datetime
    day: int
    subject: str


def index_name(sample, samples=SAMPLES):
    return "index.html" if sample is samples[0] else f"index-{sample.key}.html"


def headers_text(message):
    """The message's headers as they go out (encoded), decoded, then its MIME structure."""
    mime = message.to_mime()
    raw = mime.as_bytes().split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\r\n", "\n")
    decoded = [f"{name}: {value}" for name, value in mime.items() if name in ("From", "To", "Subject")]
    parts = [f"{part.get_content_type()}"
             + (f' (attachment "{part.get_filename()}")' if part.get_filename() else "")
             for part in mime.walk() if not part.is_multipart()]
    return (raw + "\n\nDecoded:\n" + "\n".join(decoded) + "\n\nParts: " + ", ".join(parts) + "\n")


def timeline(drip, sample, *, signup):
    """When each email would go out for ``sample`` signing up (and confirming) at ``signup``."""
    settings = drip.settings
    tz = subscriber_zone(sample.subscriber, settings)
    rows = []
    for campaign in drip.campaigns:
        enrollment = Enrollment(0, campaign.id, signup)
        for step, due in planned_times(campaign, enrollment, sample.subscriber, settings):
            local = due.astimezone(tz)
            day = (local.date() - signup.astimezone(tz).date()).days
            subject = template_context(drip, sample.subscriber, campaign, step)["subject"]
            rows.append(TimelineRow(campaign, step, due, local, day, subject))
    return sorted(rows, key=lambda r: (r.due_at, r.campaign.id))


def render_all(drip, samples=SAMPLES, *, now):
    emails = []
    for sample in samples:
        for campaign in drip.campaigns:
            for step in campaign.steps:
                message = compose(drip, sample.subscriber, campaign, step, now=now)
                preheader = template_context(drip, sample.subscriber, campaign, step)["preheader"]
                emails.append(PreviewEmail(campaign, step, sample, message, preheader))
    return emails


@functools.cache
def _page_template():
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    source = resources.files("sender").joinpath("data/preview.html").read_text("utf-8")
    return env.from_string(source)


def build_site(drip, output, *, now=None, samples=SAMPLES):
    """Render everything into ``output``; returns the path of index.html."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    emails = render_all(drip, samples, now=now)
    local = _local_pictures(drip.settings, output / "assets")
    for email in emails:
        message = email.message
        (output / f"{email.name}.html").write_text(local(message.html), encoding="utf-8")
        (output / f"{email.name}.txt").write_text(message.text, encoding="utf-8")
        (output / f"{email.name}.headers.txt").write_text(headers_text(message), encoding="utf-8")
    for sample in samples:
        page = _page_template().render(
            sample=sample, samples=samples, index_name=index_name,
            timeline=timeline(drip, sample, signup=now),
            emails=[e for e in emails if e.sample is sample], headers=headers_text,
            campaigns=list(drip.campaigns), generated=now, desktop=DESKTOP_WIDTH, phone=PHONE_WIDTH,
            tz=subscriber_zone(sample.subscriber, drip.settings),
        )
        (output / index_name(sample, samples)).write_text(page, encoding="utf-8")
    for campaign in drip.campaigns:        # each campaign's steps, rules and goal, drawn
        (output / f"graph-{campaign.id}.html").write_text(campaign_graph.page(
            campaign_graph.graph(campaign, drip.settings.send_window)), encoding="utf-8")
    return output / "index.html"


def _local_pictures(settings, folder):
    """A function that points an email's pictures at ``folder`` (written now), relative."""
    try:
        written = images.publish(settings, folder)
    except images.ImageError as exc:
        log.warning("the preview's pictures load from %s: %s", images.asset_base(settings), exc)
        return lambda html: html
    if not written:
        return lambda html: html
    remote = f'src="{images.asset_base(settings)}/'
    return lambda html: html.replace(remote, f'src="{folder.name}/')


# --- watching and serving -----------------------------------------------------------------------
def snapshot(*folders):
    """The fingerprint of every file under ``folders`` (the one the worker's reloader uses)."""
    return fingerprint(*folders)


class Rebuilder:
    """Rebuilds the site when a file under the templates or campaigns folder changes."""

    def __init__(self, drip, output, *, samples=SAMPLES):
        self.drip, self.output, self.samples = drip, Path(output), samples
        self.folders = (drip.settings.templates_dir, drip.settings.campaigns_dir)
        self.stamps = snapshot(*self.folders)
        self.last_error = None

    def rebuild(self):
        # Campaign files and templates are loaded lazily by Drip: drop them to reload.
        for name in ("campaigns", "templates"):
            self.drip.__dict__.pop(name, None)
        try:
            build_site(self.drip, self.output, samples=self.samples)
            self.last_error = None
        except DripError as exc:
            self.last_error = exc
            log.error("preview not rebuilt: %s", exc)
        return self.last_error

    def rebuild_if_changed(self):
        """Rebuild when anything changed since the last look; True when it did."""
        stamps = snapshot(*self.folders)
        if stamps == self.stamps:
            return False
        self.stamps = stamps
        self.rebuild()
        return True

    def watch(self, stop, interval=1.0, on_rebuild=None):
        while not stop.wait(interval):
            if self.rebuild_if_changed() and on_rebuild:
                on_rebuild(self.last_error)


def make_server(output, host="127.0.0.1", port=DEFAULT_PORT):
    """The preview's HTTP server for ``output``, listening; a port in use is a DripError."""
    handler = functools.partial(_QuietHandler, directory=str(output))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise listen_error(host, port, exc) from None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        log.debug("preview server: " + format, *args)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def serve(rebuilder, server, *, interval=1.0, on_rebuild=None):
    """Serve until interrupted, rebuilding on changes in a background thread."""
    stop = threading.Event()
    watcher = threading.Thread(target=rebuilder.watch, args=(stop, interval, on_rebuild), daemon=True)
    watcher.start()
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
        watcher.join(timeout=interval + 1)


# --- a test send ---------------------------------------------------------------------------------
def find_step(drip, ref):
    """(campaign, step) for "campaign/step"; NotFound lists what there is."""
    campaign_id, _, step_id = ref.partition("/")
    campaign = drip.campaigns.get(campaign_id)
    step = campaign.step(step_id) if campaign else None
    if step is None:
        known = ", ".join(f"{c.id}/{s.id}" for c in drip.campaigns for s in c.steps)
        raise NotFound(f"no email {ref!r}: use CAMPAIGN/STEP, one of {known}")
    return campaign, step


def send_test(drip, ref, to, *, now, sample=None):
    """Compose ``ref`` for a sample subscriber at address ``to`` and send it as a test."""
    campaign, step = find_step(drip, ref)
    person = sample_for(normalize_email(to), sample or SAMPLES[0]).subscriber
    message = compose(drip, person, campaign, step, now=now, is_test=True)
    result = drip.provider.send([message])[0]
    return message, result


# --- a broadcast ---------------------------------------------------------------------------------
_BROADCAST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Preview: {{ subject }}</title><style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem}
iframe{border:1px solid #ccc;margin:0 1rem 1rem 0;background:#fff}pre{white-space:pre-wrap;
background:#f6f6f6;padding:1rem;max-width:60rem}</style></head><body>
<h1>{{ subject }}</h1><p>{{ path }}{% if when %}, {{ when }}{% endif %}; generated {{ generated }}</p>
{% for email in emails %}<h2 id="{{ email.sample.key }}">{{ email.sample.label }}:
{{ email.message.subject }}</h2><p>Preheader: {{ email.preheader }}</p>
<iframe src="{{ email.name }}.html" width="{{ desktop }}" height="700" title="desktop"></iframe>
<iframe src="{{ email.name }}.html" width="{{ phone }}" height="700" title="phone"></iframe>
<pre>{{ email.message.text }}</pre><pre>{{ headers(email.message) }}</pre>{% endfor %}
</body></html>"""


def build_broadcast(drip, broadcast, output, *, now=None, samples=SAMPLES):
    """Render ``broadcast`` for each sample subscriber into ``output`` (the same files as
    ``build_site`` writes for a campaign step) with a page of its own,
    ``broadcast-NAME.html``; returns that page's path."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    step = broadcast.steps[0]
    emails = []
    for sample in samples:
        message = compose(drip, sample.subscriber, broadcast, step, now=now)
        preheader = template_context(drip, sample.subscriber, broadcast, step, now=now)["preheader"]
        emails.append(PreviewEmail(broadcast, step, sample, message, preheader))
    local = _local_pictures(drip.settings, output / "assets")
    for email in emails:
        (output / f"{email.name}.html").write_text(local(email.message.html), encoding="utf-8")
        (output / f"{email.name}.txt").write_text(email.message.text, encoding="utf-8")
        (output / f"{email.name}.headers.txt").write_text(headers_text(email.message),
                                                          encoding="utf-8")
    page = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        _BROADCAST_PAGE).render(
        subject=broadcast.subject, path=str(broadcast.path), generated=now.isoformat(),
        when=broadcast.when.text if broadcast.when else "", emails=emails,
        headers=headers_text, desktop=DESKTOP_WIDTH, phone=PHONE_WIDTH)
    index = output / f"broadcast-{broadcast.slug}.html"
    index.write_text(page, encoding="utf-8")
    return index


def send_broadcast_test(drip, broadcast, to, *, now, sample=None):
    """Compose ``broadcast`` for a sample subscriber at address ``to`` and send it as a test
    ([TEST] in the subject, a Message-ID of its own, nothing in the ledger)."""
    person = sample_for(normalize_email(to), sample or SAMPLES[0]).subscriber
    message = compose(drip, person, broadcast, broadcast.steps[0], now=now, is_test=True)
    result = drip.provider.send([message])[0]
    return message, result
