"""The dashboard's WSGI application: routing, the session check, CSRF, the login and logout,
and the security headers on every answer. The pages themselves are in ``views.py``.

It runs inside the public app's process and shares its per-request store connection, its
campaigns and templates (reloaded when edited) and its background sender (``WebApp``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from . import auth, csrf, views
from .pages import AdminPages

log = logging.getLogger("drip.web.admin")

COOKIE = "drip_admin"
FORM_LIMIT = 64 * 1024
PUBLIC = {"login", "css"}        # the only pages answered without a session

class IdConverter(IntegerConverter):
    """A row id: a whole number a database column can hold (a larger one is nobody's: 404)."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=2**63 - 1)


URL_MAP = Map(converters={"id": IdConverter}, rules=[
    Rule("/", endpoint="overview", methods=["GET"]),
    Rule("/login", endpoint="login", methods=["GET", "POST"]),
    Rule("/logout", endpoint="logout", methods=["POST"]),
    Rule("/admin.css", endpoint="css", methods=["GET"]),
    Rule("/subscribers", endpoint="subscribers", methods=["GET"]),
    Rule("/subscribers/new", endpoint="add", methods=["GET", "POST"]),
    Rule("/subscribers/<id:sid>", endpoint="subscriber", methods=["GET"]),
    Rule("/subscribers/<id:sid>/data.json", endpoint="data_download", methods=["GET"]),
    Rule("/subscribers/<id:sid>/<any(pause, resume, unsubscribe, erase):action>",
         endpoint="act", methods=["GET", "POST"]),
    Rule("/campaigns", endpoint="campaigns", methods=["GET"]),
    Rule("/campaigns/<cid>/resume", endpoint="brake_resume", methods=["GET", "POST"]),
    Rule("/activity", endpoint="activity", methods=["GET"]),
])


@dataclass
class Context:
    """One request to the dashboard: what every view needs."""

    admin: AdminApp
    request: Request
    drip: object
    now: object
    ip: str
    session: auth.Session | None = None
    extra_cookies: list = field(default_factory=list)

    @property
    def base(self):
        """The dashboard's own path (/admin), for links and the cookies' Path."""
        return self.request.script_root

    def page(self, template, status=200, /, **context):
        settings = self.admin.settings
        context.setdefault("title", "")
        context.update(base=self.base, coach=settings.coach, brand=settings.brand,
                       session=self.session, csrf_field=csrf.FIELD,
                       csrf=self.session.csrf if self.session else "",
                       nav=context.get("nav", ""))
        body = self.admin.pages.render(template, context)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    def error(self, status, title, message):
        return self.page("error.html", status, title=title, message=message)

    def audit(self, action, *, subscriber_id=None, target=None, details=None):
        auth.audit(self.drip.store, self.session.name, action, now=self.now, ip=self.ip,
                   subscriber_id=subscriber_id, target=target, details=details)

    def go(self, path):
        return redirect(f"{self.base}{path}", 303)


class AdminApp:
    def __init__(self, web):
        self.web = web
        self.settings = web.settings
        self.pages = AdminPages()
        self.secure_cookies = self.settings.base_url.startswith("https://")
        logo = self.settings.brand.logo_url
        logo_origin = f" {urlsplit(logo).scheme}://{urlsplit(logo).netloc}" if logo else ""
        self.policy = ("default-src 'none'; style-src 'self'; img-src 'self'" + logo_origin
                       + "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = request.max_form_memory_size = FORM_LIMIT
        policy = self.policy
        try:
            response = self.dispatch(request)
        except NotFound:
            # The public site's own page, as for any address that is not there.
            response = self.web.page("error.html", 404, title="Not found",
                                     message="There is no page here.")
            policy = "default-src 'none'; style-src 'unsafe-inline'; img-src https:"
        except RequestEntityTooLarge:
            response = Response("The request is larger than the dashboard accepts.", 413)
        except HTTPException as exc:
            response = exc.get_response(environ)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.path)
            response = Response("Something went wrong; the error is in the server's log.", 500,
                                content_type="text/plain; charset=utf-8")
        headers = response.headers
        headers["Content-Security-Policy"] = policy
        headers.setdefault("Cache-Control", "no-store")
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"   # no-referrer would make form posts say Origin: null
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Cross-Origin-Resource-Policy"] = "same-origin"
        return response(environ, start_response)

    def dispatch(self, request):
        now = self.web.clock()
        with self.web.drip() as drip:
            if not drip.store.has_admin_users():
                raise NotFound()       # off until `drip admin set-password`
            if not request.environ.get("PATH_INFO"):
                return redirect(f"{request.script_root}/", 308)      # /admin -> /admin/
            endpoint, values = URL_MAP.bind_to_environ(request.environ).match()
            ctx = Context(self, request, drip, now, ip=request.remote_addr or "")
            if endpoint not in PUBLIC:
                refused = self._check_session(ctx)
                if refused is not None:
                    return refused
            response = getattr(self, f"on_{endpoint}", None) or getattr(views, endpoint)
            response = response(ctx, **values)
            for args in ctx.extra_cookies:
                response.set_cookie(**args)
            return response

    def _check_session(self, ctx):
        """None when the request may go on; else the answer that refuses it."""
        store = ctx.drip.store
        ctx.session = auth.session_for(store, ctx.request.cookies.get(COOKIE), now=ctx.now,
                                       timeout=self.settings.admin_session_timeout)
        if ctx.session is None:
            if ctx.request.method in ("GET", "HEAD"):
                return ctx.go("/login")
            return ctx.error(403, "Please log in again",
                             "Your session has ended, so nothing was changed. Log in and try "
                             "again.")
        if ctx.request.method == "POST" and not (
                csrf.same_origin(ctx.request, self.settings.base_url)
                and csrf.matches(ctx.session.csrf, ctx.request.form.get(csrf.FIELD))):
            ctx.audit("refused: a form without its token", target=ctx.request.path)
            return ctx.error(403, "Nothing was changed",
                             "This form did not carry the token of your session (it may be "
                             "from another site, or an old tab). Open the page again and "
                             "resubmit.")
        return None

    def _cookie(self, ctx, key, value, *, max_age=None, delete=False):
        args = {"key": key, "value": "" if delete else value, "path": ctx.base or "/",
                "secure": self.secure_cookies, "httponly": True, "samesite": "Strict",
                "max_age": 0 if delete else max_age}
        ctx.extra_cookies.append(args)

    # --- the pages answered without a session ---------------------------------------------
    def on_css(self, ctx):
        body = self.pages.render("admin.css", {"brand": self.settings.brand})
        response = Response(body, content_type="text/css; charset=utf-8")
        response.headers["Cache-Control"] = "max-age=300"
        return response

    def on_login(self, ctx):
        request, store = ctx.request, ctx.drip.store
        if request.method != "POST":
            live = auth.session_for(store, request.cookies.get(COOKIE), now=ctx.now,
                                    timeout=self.settings.admin_session_timeout)
            if live is not None:
                return ctx.go("/")
            return self._login_form(ctx)
        if not (csrf.same_origin(request, self.settings.base_url)
                and csrf.matches(request.cookies.get(csrf.LOGIN_COOKIE),
                                 request.form.get(csrf.FIELD))):
            return self._login_form(ctx, 400, "This form has expired. Please log in again.")
        result = auth.log_in(store, request.form.get("name", "")[:200],
                             request.form.get("password", "")[:auth.MAX_LENGTH + 1],
                             ip=ctx.ip, now=ctx.now)
        if result.outcome == "ok":
            auth.prune(store, now=ctx.now, timeout=self.settings.admin_session_timeout)
            self._cookie(ctx, COOKIE, result.token)
            self._cookie(ctx, csrf.LOGIN_COOKIE, "", delete=True)
            return ctx.go("/")
        if result.outcome == "wrong":
            return self._login_form(ctx, 401, "That name and password do not match.")
        minutes = auth.WINDOW // 60
        message = (f"Too many failed attempts for this name: it is locked for up to {minutes} "
                   "minutes." if result.outcome == "locked" else
                   f"Too many attempts from your network. Please wait up to {minutes} minutes.")
        response = self._login_form(ctx, 429, message)
        response.headers["Retry-After"] = str(auth.WINDOW)
        return response

    def _login_form(self, ctx, status=200, message=None):
        token = csrf.new_token()
        self._cookie(ctx, csrf.LOGIN_COOKIE, token, max_age=3600)
        return ctx.page("login.html", status, title="Log in", login_token=token,
                        message=message, name=ctx.request.form.get("name", "")[:64])

    def on_logout(self, ctx):
        auth.log_out(ctx.drip.store, ctx.session, now=ctx.now, ip=ctx.ip)
        self._cookie(ctx, COOKIE, "", delete=True)
        return ctx.go("/login")
