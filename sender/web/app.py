"""The WSGI application: routing, pages, and one Drip (one store connection) per request.

SQLite connections must stay in the thread that opened them, so every request
opens its own store and closes it at the end; the campaigns and the email
templates are loaded once per application and shared (both are read-only), and
loaded again when their files are edited (``reloader.py``).
Emails a request calls for (the confirmation, the welcome) are sent after the
answer by the app's background sender (``background.py``), which opens its own
store per job. Time comes from ``clock``, so tests pass it in.

The routes live with what they serve: the signup form in ``signup.py``, the confirm and
unsubscribe links in ``links.py``, the sunset email's "yes, keep them" in ``keep.py``, the
guide in ``guide_host.py``, the pictures in ``assets.py``, the archive in ``archive.py``;
provider events and the health check are here.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from .. import dispatch
from ..archive import Archive
from ..config import Settings
from ..drip import Drip
from ..errors import DripError, ProviderError
from ..events import apply_events
from ..logging_setup import MASK
from ..reloader import Reloader
from ..store import open_store
from ..webhooks import PROVIDERS, BadPayload, Unverified, receive
from .admin import mount_admin
from .archive import ArchiveEndpoints
from .assets import AssetEndpoints, HostedAssets
from .background import Background
from .guide_host import GuideEndpoints, HostedGuide
from .keep import KeepEndpoints
from .links import LinkEndpoints
from .pages import Pages
from .signup import RATE_WINDOW_SECONDS, SignupEndpoints

log = logging.getLogger("drip.web")

FORM_LIMIT = 64 * 1024          # a signup, confirm or unsubscribe request body
EVENTS_LIMIT = 2 * 1024 * 1024  # a provider's batch of events
PRUNE_EVERY = timedelta(minutes=10)  # how often old rate-limit rows are deleted
RELOAD_EVERY = timedelta(seconds=1)  # how often edited campaign and template files are looked for


_TOKEN_IN_PATH = re.compile(r"/(confirm|unsubscribe|keep)/[^/?\s\"]+")


def mask_path(text):
    """A request line with the signed token of a confirm, unsubscribe or keep link masked."""
    return _TOKEN_IN_PATH.sub(lambda m: f"/{m.group(1)}/{MASK}", str(text))


class MaskedRequestHandler(WSGIRequestHandler):
    """Werkzeug's request log, without the tokens (each one can unsubscribe someone)."""

    def log(self, type, message, *args):
        super().log(type, mask_path(message % args if args else message).replace("%", "%%"))


def utc_now():
    return datetime.now(UTC).replace(microsecond=0)


def create_app(settings=None, *, clock=None):
    """The WSGI application. Without ``settings`` they are read from the environment
    (and a ``.env`` in the working folder, whose values never override the environment)."""
    if settings is None:
        from dotenv import load_dotenv

        load_dotenv(".env", override=False)
        settings = Settings.from_env()
        # Under a production server (waitress, gunicorn), as `drip serve` does: no example
        # values with a real provider, and no new empty database from a wrong folder.
        settings.refuse_example_values("the web app (sender.web:create_app)")
        open_store(settings.database, create=False).close()
    app = WebApp(settings, clock=clock or utc_now)
    mount_admin(app)   # the dashboard at /admin, a second app in front (admin/__init__.py)
    proxies = app.settings.proxy_count
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app


class WebApp(SignupEndpoints, LinkEndpoints, GuideEndpoints, AssetEndpoints, ArchiveEndpoints,
             KeepEndpoints):
    def __init__(self, settings, *, clock):
        self.settings = settings
        self.clock = clock
        self.pages = Pages(settings.templates_dir)
        self.guide = HostedGuide(settings)
        self.assets = HostedAssets(settings)
        self.archive = Archive(settings)
        self.url_map = Map([
            Rule("/", endpoint="form", methods=["GET"]),
            Rule("/snippet", endpoint="snippet", methods=["GET"]),
            Rule("/subscribe", endpoint="subscribe", methods=["GET", "POST"]),
            Rule("/confirm/<token>", endpoint="confirm", methods=["GET", "POST"]),
            Rule("/unsubscribe/<token>", endpoint="unsubscribe", methods=["GET", "POST"]),
            Rule("/keep/<token>", endpoint="keep", methods=["GET", "POST"]),
            Rule("/events/<provider>", endpoint="events", methods=["POST"]),
            Rule("/healthz", endpoint="health", methods=["GET"]),
            Rule("/guide", endpoint="guide", methods=["GET"]),
            Rule("/guide/pdf", endpoint="guide_pdf", methods=["GET"]),
            Rule("/guide/<version>/<name>", endpoint="guide_file", methods=["GET"]),
            Rule("/assets/<name>", endpoint="asset", methods=["GET"]),
            Rule("/archive", endpoint="archive", methods=["GET"]),
            Rule("/archive/feed.xml", endpoint="archive_feed", methods=["GET"]),
            Rule("/archive/<name>", endpoint="archive_entry", methods=["GET"]),
        ])
        self._shared = None
        self._lock = threading.Lock()
        self.background = Background()
        self._pruned_at = None

    def drain(self, timeout=30):
        """Wait until the background sender has done every job given so far (tests, and a
        server shutting down); False if ``timeout`` seconds passed first."""
        return self.background.drain(timeout)

    def close(self, timeout=30):
        """Finish the queued background jobs (at most ``timeout`` seconds) and stop."""
        return self.background.close(timeout)

    # --- plumbing ------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = FORM_LIMIT
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
            response = getattr(self, f"on_{endpoint}")(request, **values)
        except RequestEntityTooLarge:
            response = self.page("error.html", 413, title="Too large",
                                 message="The request is larger than this server accepts.")
        except HTTPException as exc:
            response = exc.get_response(environ) if not isinstance(exc, NotFound) else self.page(
                "error.html", 404, title="Not found", message="There is no page here.")
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.path)
            response = self.page("error.html", 500, title="Something went wrong",
                                 message="Please try again in a few minutes.")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response(environ, start_response)

    def _campaigns_and_templates(self):
        """The campaigns and email templates every request shares: loaded at the first
        request, and again when their files change (looked at no more than once per
        RELOAD_EVERY of the app's clock; a broken edit is logged and the last good version
        kept: see ``reloader.py``)."""
        with self._lock:
            if self._shared is None:
                self._shared = Reloader(self.settings, clock=self.clock, every=RELOAD_EVERY)
            loaded = self._shared.current()
        return loaded.campaigns, loaded.templates

    @contextmanager
    def drip(self):
        """A Drip for this request: its own store connection, the shared campaigns."""
        campaigns, templates = self._campaigns_and_templates()
        drip = Drip(self.settings, store=open_store(self.settings.database))
        drip.__dict__.update(campaigns=campaigns, templates=templates)
        try:
            yield drip
        finally:
            drip.close()

    def page(self, name, status=200, **context):
        context.setdefault("coach", self.settings.coach)
        context.setdefault("brand", self.settings.brand)
        context.setdefault("back_url", None)
        body = self.pages.render(name, context)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    @staticmethod
    def json(data, status=200):
        return Response(json.dumps(data), status=status, content_type="application/json")

    def send_soon(self, subscriber_id):
        """Send this subscriber's due email (the confirmation, the welcome) from the
        background sender, after the answer; when it fails, the delivery stays scheduled
        for the next `drip send`."""
        self.background.submit(lambda: self._send_due(subscriber_id))

    def _send_due(self, subscriber_id):
        with self.drip() as drip:
            try:
                dispatch.send_due(drip, now=self.clock(), subscriber_id=subscriber_id)
            except ProviderError as exc:
                log.error("sending at once failed; `drip send` will retry: %s", exc)

    def _prune_rate_hits(self, now):
        """Every PRUNE_EVERY, delete the rate-limit rows older than the window (no limit
        counts them any more), in the background."""
        with self._lock:
            if self._pruned_at is not None and abs(now - self._pruned_at) < PRUNE_EVERY:
                return
            self._pruned_at = now
        before = now - timedelta(seconds=RATE_WINDOW_SECONDS)

        def prune():
            with self.drip() as drip:
                drip.store.forget_rate_hits(before=before)

        self.background.submit(prune)

    def on_health(self, request):
        return Response("ok", content_type="text/plain")

    # --- provider events -----------------------------------------------------------------
    def on_events(self, request, provider):
        if provider not in PROVIDERS:
            raise NotFound()
        request.max_content_length = EVENTS_LIMIT
        body = request.get_data(cache=False)
        now = self.clock()
        with self.drip() as drip:
            try:
                events, token = receive(self.settings, provider, request.headers, body,
                                        now=now, store=drip.store)
            except Unverified as exc:
                log.warning("rejected a %s webhook: %s", provider, exc)
                return self.json({"error": "unverified"}, 401)
            except BadPayload as exc:
                return self.json({"error": str(exc)}, 400)
            try:
                result = apply_events(drip, events, now=now)
            except Exception as exc:   # noqa: BLE001 - any failure: the provider must retry
                log.error("could not apply %s events: %s", provider, exc,
                          exc_info=not isinstance(exc, DripError))
                if token is not None:      # let the provider's retry of this request in
                    drip.store.forget_token(provider, token)
                return self.json({"error": "could not apply the events"}, 500)
        return self.json({"ok": True, **result.to_dict()})
