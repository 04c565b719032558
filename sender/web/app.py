"""The WSGI application: routing, pages, and one Drip (one store connection) per request.

SQLite connections must stay in the thread that opened them, so every request
opens its own store and closes it at the end; the campaigns and the email
templates are loaded once per application and shared (both are read-only), and
loaded again when their files are edited (``reloader.py``).
Emails a request calls for (the confirmation, the welcome) are sent after the
answer by the app's background sender (``background.py``), which opens its own
store per job. Time comes from ``clock``, so tests pass it in.
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
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from .. import dispatch
from .. import subscribers as subscriber_ops
from ..config import Settings
from ..drip import Drip
from ..errors import ConfigError, DripError, InvalidInput, ProviderError
from ..events import apply_events, record_unsubscribe
from ..guide import ATTACHMENT_NAME, HTML_NAME, PDF_NAME
from ..logging_setup import MASK
from ..message import check_header_value
from ..models import ENDED_STATUSES
from ..reloader import Reloader
from ..safeurl import safe_redirect
from ..schedule import zone
from ..store import open_store
from ..tokens import CONFIRM, UNSUBSCRIBE, TokenInvalid
from ..webhooks import PROVIDERS, BadPayload, Unverified, receive
from .admin import mount_admin
from .assets import CACHE_CONTROL, HostedAssets
from .background import Background
from .guide_host import CONTENT_TYPES, IMMUTABLE, HostedGuide
from .pages import Pages
from .signup import HONEYPOT, RATE_WINDOW_SECONDS, consent_text, read_signup

log = logging.getLogger("drip.web")

FORM_LIMIT = 64 * 1024          # a signup, confirm or unsubscribe request body
EVENTS_LIMIT = 2 * 1024 * 1024  # a provider's batch of events
ONE_CLICK = "List-Unsubscribe=One-Click"
PRUNE_EVERY = timedelta(minutes=10)  # how often old rate-limit rows are deleted
RELOAD_EVERY = timedelta(seconds=1)  # how often edited campaign and template files are looked for


_TOKEN_IN_PATH = re.compile(r"/(confirm|unsubscribe)/[^/?\s\"]+")


def mask_path(text):
    """A request line with the signed token of a confirm or unsubscribe link masked."""
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
    proxies = app.limits["DRIP_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app


def _count(settings, name):
    value = settings.get(name) or "0"
    try:
        number = int(value)
        if number < 0:
            raise ValueError(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a whole number of 0 or more (set it in .env "
                          "or in the environment)") from None
    return number


def _check_details(signup):
    """Refuse the details ``add_subscriber`` would refuse, before the address is looked up:
    a 400 that only a new address could get would tell who is on the list."""
    subscriber_ops._clean_name(signup.name)
    if signup.timezone:
        try:
            zone(signup.timezone)
        except InvalidInput:
            raise InvalidInput(f"We do not know the time zone {signup.timezone[:60]!r}. Please "
                               "choose yours from the list, or 'Not sure'.") from None
    for key, value in signup.fields.items():
        check_header_value(f"field {key}", value)


class WebApp:
    def __init__(self, settings, *, clock):
        self.settings = settings
        self.clock = clock
        self.pages = Pages(settings.templates_dir)
        self.guide = HostedGuide(settings)
        self.assets = HostedAssets(settings)
        self.url_map = Map([
            Rule("/", endpoint="form", methods=["GET"]),
            Rule("/snippet", endpoint="snippet", methods=["GET"]),
            Rule("/subscribe", endpoint="subscribe", methods=["GET", "POST"]),
            Rule("/confirm/<token>", endpoint="confirm", methods=["GET", "POST"]),
            Rule("/unsubscribe/<token>", endpoint="unsubscribe", methods=["GET", "POST"]),
            Rule("/events/<provider>", endpoint="events", methods=["POST"]),
            Rule("/healthz", endpoint="health", methods=["GET"]),
            Rule("/guide", endpoint="guide", methods=["GET"]),
            Rule("/guide/pdf", endpoint="guide_pdf", methods=["GET"]),
            Rule("/guide/<version>/<name>", endpoint="guide_file", methods=["GET"]),
            Rule("/assets/<name>", endpoint="asset", methods=["GET"]),
        ])
        self._shared = None
        self._lock = threading.Lock()
        self.limits = {name: _count(settings, name) for name in (
            "DRIP_SIGNUP_LIMIT_IP", "DRIP_SIGNUP_LIMIT_ADDRESS", "DRIP_PROXY_COUNT")}
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

    # --- signup --------------------------------------------------------------------------
    def _form_context(self):
        return {"action": f"{self.settings.base_url}/subscribe", "honeypot": HONEYPOT,
                "consent_text": self.settings.get("DRIP_CONSENT_TEXT")}

    def on_form(self, request):
        return self.page("signup.html", **self._form_context())

    def on_snippet(self, request):
        snippet = self.pages.render("snippet.html", self._form_context())
        return self.page("snippet_page.html", snippet=snippet, **self._form_context())

    def _way_back(self, request):
        """Where a failed signup's page leads back to: the page on the coach's site that
        sent it (when its host is allowed), else our own form."""
        referrer = safe_redirect(request.headers.get("Referer"), self.settings.redirect_hosts)
        return referrer or f"{self.settings.base_url}/"

    def on_health(self, request):
        return Response("ok", content_type="text/plain")

    def on_subscribe(self, request):
        if request.method in ("GET", "HEAD"):
            return self.on_form(request)
        wants_json = request.is_json or request.accept_mimetypes.best == "application/json"
        thank_you = None   # where a successful form signup goes next (never for JSON)

        def answer(status=200, message=None):
            if status == 200:
                text = "Check your inbox: we sent you a link to confirm your subscription."
            else:
                text = message
            if wants_json:
                return self.json({"ok": status == 200, "message": text}, status)
            if status == 200:
                if thank_you:
                    return redirect(thank_you, 303)
                return self.page("check_inbox.html", message=text,
                                 form_url=f"{self.settings.base_url}/")
            title = "Please try again later" if status == 429 else "Please check the form"
            return self.page("error.html", status, title=title, message=text,
                             back_url=self._way_back(request))

        if request.is_json:
            data = request.get_json(silent=True)
            if not isinstance(data, dict):
                return answer(400, "The body must be a JSON object.")
        else:
            data = request.form.to_dict()
            # Only https pages on allowed hosts; anything else shows the usual page.
            thank_you = (safe_redirect(data.get("redirect"), self.settings.redirect_hosts)
                         or self.settings.signup_redirect)
        try:
            signup = read_signup(data)
            _check_details(signup)
        except InvalidInput as exc:
            return answer(400, str(exc))
        now = self.clock()
        ip = request.remote_addr or ""
        limits = self.limits
        with self.drip() as drip:
            store = drip.store
            if not store.rate_limit(f"ip:{ip}", now=now, window_seconds=RATE_WINDOW_SECONDS,
                                    limit=limits["DRIP_SIGNUP_LIMIT_IP"]):
                response = answer(429, "Too many signups from your network; please try again "
                                       "in an hour.")
                response.headers["Retry-After"] = str(RATE_WINDOW_SECONDS)
                return response
            self._prune_rate_hits(now)
            if signup.bot:
                return answer()
            # Per address, quietly: an address being list-bombed gets no more mail, and the
            # answer says nothing about it.
            if not store.rate_limit(f"email:{signup.email}", now=now,
                                    window_seconds=RATE_WINDOW_SECONDS,
                                    limit=limits["DRIP_SIGNUP_LIMIT_ADDRESS"]):
                return answer()
            try:
                due = self._sign_up(drip, signup, ip, now)
            except InvalidInput as exc:
                return answer(400, str(exc))
        if due is not None:
            self.send_soon(due)
        return answer()

    def _sign_up(self, drip, signup, ip, now):
        """Store one signup; returns the id of the subscriber whose confirmation is now
        due, or None.

        A new address (or one erased on request) becomes pending with its consent record.
        Someone who unsubscribed gets a fresh consent record and the confirmation, and on
        confirming continues where she stopped. A pending address keeps her name, fields
        and consent record, and may get the confirmation again (at most once an hour).
        Active and paused subscribers, and bounced or complained addresses, stay exactly
        as they are. A signup never changes an existing subscriber's name or fields: the
        person signing up may be a stranger. Every case runs in one write transaction,
        after the same rate-limit writes, and no email is sent here, so the time taken
        does not tell the cases apart."""
        store = drip.store
        with store.transaction():
            existing = store.get_subscriber(email=signup.email)
            if existing is not None and existing.status == "pending":
                queued = subscriber_ops.queue_confirmation(drip, existing, now=now)
                return existing.id if queued else None
            if existing is not None and existing.status != "unsubscribed":
                return None
            new = existing is None
            result = subscriber_ops.add_subscriber(
                drip, signup.email, now=now, name=signup.name if new else None,
                timezone=signup.timezone if new else None,
                fields=signup.fields if new else None, consent_source=f"form:{signup.source}",
                consent_text=consent_text(self.settings), ip=ip,
                resubscribe=True)  # the person signs up themselves, even after an erasure
        return result.subscriber.id if result.confirmation_queued else None

    # --- double opt-in -------------------------------------------------------------------
    def _subscriber_from(self, drip, purpose, token, now):
        """(subscriber, None), or (None, error response) for a bad or expired token."""
        try:
            uid = drip.signer.read(purpose, token, now=now)
        except TokenInvalid as exc:
            if exc.expired and purpose == CONFIRM:
                message = ("This confirmation link has expired. Please sign up again to get "
                           "a fresh one.")
            else:
                message = ("This link is not valid. Please use the link exactly as it came "
                           "in the email.")
            return None, self.page("error.html", 400, title="This link does not work",
                                   message=message)
        subscriber = drip.store.get_subscriber(uid=uid)
        if subscriber is None and purpose == CONFIRM:
            return None, self.page("error.html", 400, title="This link does not work",
                                   message="We have no subscription for this link any more. "
                                           "Please sign up again.")
        return subscriber, None

    def on_confirm(self, request, token):
        now = self.clock()
        with self.drip() as drip:
            subscriber, error = self._subscriber_from(drip, CONFIRM, token, now)
            if error:
                return error
            if request.method in ("GET", "HEAD"):
                return self.page("confirm.html", action=request.path,
                                 done=subscriber.status != "pending")
            if subscriber.status in ENDED_STATUSES:
                return self.page("message.html", title="You have unsubscribed",
                                 message="This address unsubscribed earlier, so we will not "
                                         "send it anything.")
            if subscriber.status == "pending":
                subscriber_ops.confirm(drip, subscriber, now=now)
                self.send_soon(subscriber.id)
            hosted = self.settings.guide_url == f"{self.settings.base_url}/guide"
            return self.page("confirmed.html", guide_url=self.settings.guide_url,
                             pdf_url=f"{self.settings.base_url}/guide/pdf" if hosted else None)

    # --- one-click unsubscribe (RFC 8058) -------------------------------------------------
    def on_unsubscribe(self, request, token):
        now = self.clock()
        with self.drip() as drip:
            subscriber, error = self._subscriber_from(drip, UNSUBSCRIBE, token, now)
            if error:
                return error
            if request.method in ("GET", "HEAD"):
                # A mail scanner may fetch this URL: a GET only shows the button.
                return self.page("unsubscribe.html", action=request.path)
            if request.form.get("List-Unsubscribe") != "One-Click":
                return self.page("error.html", 400, title="Nothing was changed",
                                 message=f"An unsubscribe request must carry {ONE_CLICK}.")
            if subscriber is not None:
                record_unsubscribe(drip, subscriber, now=now, source="one-click")
            return self.page("unsubscribed.html")

    # --- the guide, hosted (guide_host.py) ----------------------------------------------
    def _current_guide(self):
        """(GuideVersion, None), or (None, a 503 page) when the guide cannot be built."""
        try:
            return self.guide.current(), None
        except DripError as exc:
            log.error("cannot serve the guide: %s", exc)
            return None, self.page("error.html", 503, title="The guide is not available right now",
                                   message="Please try again in a little while.")

    def _to_guide_file(self, name):
        guide, error = self._current_guide()
        if error:
            return error
        return redirect(f"{self.settings.base_url}/guide/{guide.version}/{name}", 302)

    def on_guide(self, request):
        return self._to_guide_file(HTML_NAME)

    def on_guide_pdf(self, request):
        return self._to_guide_file(PDF_NAME)

    def on_guide_file(self, request, version, name):
        if name not in CONTENT_TYPES:
            raise NotFound()
        guide, error = self._current_guide()
        if error:
            return error
        if version != guide.version:      # an older version: on to the current one
            return self._to_guide_file(name)
        response = Response(guide.files[name], content_type=CONTENT_TYPES[name])
        response.headers["Cache-Control"] = IMMUTABLE
        if name == PDF_NAME:
            response.headers["Content-Disposition"] = f'inline; filename="{ATTACHMENT_NAME}"'
        return response

    # --- the emails' pictures (assets.py) -------------------------------------------------
    def on_asset(self, request, name):
        try:
            asset = self.assets.find(name)
        except DripError as exc:
            log.error("cannot serve the picture %s: %s", name, exc)
            raise NotFound() from None
        if asset is None:
            raise NotFound()
        if asset.moved_to:
            return redirect(f"{self.settings.base_url}/assets/{asset.moved_to}", 302)
        response = Response(asset.data, content_type=asset.content_type)
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response

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
