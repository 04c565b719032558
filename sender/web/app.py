"""The WSGI application: routing, pages, and one Drip (one store connection) per request.

SQLite connections must stay in the thread that opened them, so every request
opens its own store and closes it at the end; the campaigns and the email
templates are loaded once per application and shared (both are read-only).
Time comes from ``clock``, so tests pass it in.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from contextlib import contextmanager
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from .. import dispatch
from .. import subscribers as subscriber_ops
from ..config import Settings
from ..drip import Drip
from ..errors import ConfigError, DripError, InvalidInput, ProviderError
from ..events import apply_events, record_unsubscribe
from ..logging_setup import MASK
from ..models import ENDED_STATUSES
from ..store import open_store
from ..tokens import CONFIRM, UNSUBSCRIBE, TokenInvalid
from ..webhooks import PROVIDERS, BadPayload, Unverified, receive
from .signup import HONEYPOT, RATE_WINDOW_SECONDS, consent_text, read_signup

log = logging.getLogger("drip.web")

FORM_LIMIT = 64 * 1024          # a signup, confirm or unsubscribe request body
EVENTS_LIMIT = 2 * 1024 * 1024  # a provider's batch of events
ONE_CLICK = "List-Unsubscribe=One-Click"


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
    app = WebApp(settings, clock=clock or utc_now)
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


class WebApp:
    def __init__(self, settings, *, clock):
        self.settings = settings
        self.clock = clock
        self.pages = Environment(loader=PackageLoader("sender.web", "templates"),
                                 autoescape=select_autoescape(default=True),
                                 undefined=StrictUndefined)
        self.url_map = Map([
            Rule("/", endpoint="form", methods=["GET"]),
            Rule("/snippet", endpoint="snippet", methods=["GET"]),
            Rule("/subscribe", endpoint="subscribe", methods=["GET", "POST"]),
            Rule("/confirm/<token>", endpoint="confirm", methods=["GET", "POST"]),
            Rule("/unsubscribe/<token>", endpoint="unsubscribe", methods=["GET", "POST"]),
            Rule("/events/<provider>", endpoint="events", methods=["POST"]),
            Rule("/healthz", endpoint="health", methods=["GET"]),
        ])
        self._shared = None
        self._lock = threading.Lock()
        self.limits = {name: _count(settings, name) for name in (
            "DRIP_SIGNUP_LIMIT_IP", "DRIP_SIGNUP_LIMIT_ADDRESS", "DRIP_PROXY_COUNT")}

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
        with self._lock:
            if self._shared is None:
                loader = Drip(self.settings)
                self._shared = (loader.campaigns, loader.templates)
            return self._shared

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
        body = self.pages.get_template(name).render(**context)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    @staticmethod
    def json(data, status=200):
        return Response(json.dumps(data), status=status, content_type="application/json")

    def send_now(self, drip, subscriber_id, now):
        """Send this subscriber's due email (the confirmation, the welcome) at once; when
        the provider fails, the delivery stays scheduled for the next `drip send`."""
        try:
            return dispatch.send_due(drip, now=now, subscriber_id=subscriber_id)
        except ProviderError as exc:
            log.error("sending at once failed; `drip send` will retry: %s", exc)
            return None

    # --- signup --------------------------------------------------------------------------
    def _form_context(self):
        return {"action": f"{self.settings.base_url}/subscribe", "honeypot": HONEYPOT,
                "consent_text": self.settings.get("DRIP_CONSENT_TEXT")}

    def on_form(self, request):
        return self.page("signup.html", **self._form_context())

    def on_snippet(self, request):
        snippet = self.pages.get_template("snippet.html").render(**self._form_context())
        return self.page("snippet_page.html", snippet=snippet, **self._form_context())

    def on_health(self, request):
        return Response("ok", content_type="text/plain")

    def on_subscribe(self, request):
        if request.method in ("GET", "HEAD"):
            return self.on_form(request)
        wants_json = request.is_json or request.accept_mimetypes.best == "application/json"

        def answer(status=200, message=None):
            if status == 200:
                text = "Check your inbox: we sent you a link to confirm your subscription."
            else:
                text = message
            if wants_json:
                return self.json({"ok": status == 200, "message": text}, status)
            if status == 200:
                return self.page("check_inbox.html", message=text)
            return self.page("error.html", status, title="Please check the form", message=text)

        if request.is_json:
            data = request.get_json(silent=True)
            if not isinstance(data, dict):
                return answer(400, "The body must be a JSON object.")
        else:
            data = request.form.to_dict()
        try:
            signup = read_signup(data)
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
            if signup.bot:
                return answer()
            # Per address, quietly: an address being list-bombed gets no more mail, and the
            # answer says nothing about it.
            if not store.rate_limit(f"email:{signup.email}", now=now,
                                    window_seconds=RATE_WINDOW_SECONDS,
                                    limit=limits["DRIP_SIGNUP_LIMIT_ADDRESS"]):
                return answer()
            existing = store.get_subscriber(email=signup.email)
            if existing is not None and existing.status != "pending":
                # Already subscribed (or left): change nothing a stranger could change.
                return answer()
            try:
                result = subscriber_ops.add_subscriber(
                    drip, signup.email, now=now, name=signup.name, timezone=signup.timezone,
                    fields=signup.fields, consent_source=f"form:{signup.source}",
                    consent_text=consent_text(self.settings), ip=ip,
                    resubscribe=True)  # the person signs up themselves, even after an erasure
            except InvalidInput as exc:
                return answer(400, str(exc))
            if result.confirmation_queued:
                self.send_now(drip, result.subscriber.id, now)
        return answer()

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
                self.send_now(drip, subscriber.id, now)
            return self.page("confirmed.html", guide_url=self.settings.guide_url)

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

    # --- provider events -----------------------------------------------------------------
    def on_events(self, request, provider):
        if provider not in PROVIDERS:
            raise NotFound()
        request.max_content_length = EVENTS_LIMIT
        body = request.get_data(cache=False)
        now = self.clock()
        try:
            events = receive(self.settings, provider, request.headers, body, now=now)
        except Unverified as exc:
            log.warning("rejected a %s webhook: %s", provider, exc)
            return self.json({"error": "unverified"}, 401)
        except BadPayload as exc:
            return self.json({"error": str(exc)}, 400)
        with self.drip() as drip:
            try:
                result = apply_events(drip, events, now=now)
            except DripError as exc:
                log.error("could not apply %s events: %s", provider, exc)
                return self.json({"error": "could not apply the events"}, 500)
        return self.json({"ok": True, **result.to_dict()})
