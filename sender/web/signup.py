"""The signup form on `drip serve`: the form, its snippet, and ``POST /subscribe``.

    GET  /            the signup form
    GET  /snippet     the form's HTML, to paste into the coach's site
    POST /subscribe   a signup (form-encoded, multipart or JSON)

This side only reads the request (the fields as text, the honeypot, where to go next),
applies the rate limits and shows the answer; who may join and with what details is
decided by ``sender.joining``, the rules `drip subscribers add` and the import share.
"""

from __future__ import annotations

from werkzeug.utils import redirect

from .. import joining, subscribers
from ..errors import InvalidInput
from ..safeurl import safe_redirect

HONEYPOT = "website"          # hidden from people; bots fill it in
REDIRECT = "redirect"         # where a form signup goes next (an allowed https page)
RATE_WINDOW_SECONDS = 3600
CHECK_INBOX = "Check your inbox: we sent you a link to confirm your subscription."


def _text(value):
    if isinstance(value, bool):
        return "true" if value else ""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise InvalidInput("every field must be text")
    return value


def form_values(data):
    """The submitted fields (form or JSON) as text: (fields, filled in by a bot). The
    fields this side keeps for itself (the honeypot, the redirect) are taken out."""
    values = {str(key): _text(value) for key, value in data.items()}
    bot = bool(values.pop(HONEYPOT, "").strip())
    values.pop(REDIRECT, None)
    return values, bot


class SignupEndpoints:
    """The signup routes of ``WebApp`` (``app.py``)."""

    def _form_context(self):
        return {"action": f"{self.settings.base_url}/subscribe", "honeypot": HONEYPOT,
                "consent_text": self.settings.consent_text}

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

    def on_subscribe(self, request):
        if request.method in ("GET", "HEAD"):
            return self.on_form(request)
        wants_json = request.is_json or request.accept_mimetypes.best == "application/json"
        thank_you = None   # where a successful form signup goes next (never for JSON)

        def answer(status=200, message=CHECK_INBOX):
            if wants_json:
                return self.json({"ok": status == 200, "message": message}, status)
            if status == 200:
                if thank_you:
                    return redirect(thank_you, 303)
                return self.page("check_inbox.html", message=message,
                                 form_url=f"{self.settings.base_url}/")
            title = "Please try again later" if status == 429 else "Please check the form"
            return self.page("error.html", status, title=title, message=message,
                             back_url=self._way_back(request))

        if request.is_json:
            data = request.get_json(silent=True)
            if not isinstance(data, dict):
                return answer(400, "The body must be a JSON object.")
        else:
            data = request.form.to_dict()
            # Only https pages on allowed hosts; anything else shows the usual page.
            thank_you = (safe_redirect(data.get(REDIRECT), self.settings.redirect_hosts)
                         or self.settings.signup_redirect)
        try:
            values, bot = form_values(data)
            # A bot gets the usual answer; a person's details are checked before the
            # address is looked up, so a refusal says nothing about who is on the list.
            signup = None if bot else joining.read_signup(values, now=self.clock())
        except InvalidInput as exc:
            return answer(400, str(exc))
        return self._subscribe(signup, request.remote_addr or "", answer)

    def _subscribe(self, signup, ip, answer):
        """The rate limits, then the signup (None: a bot's); the answer as ``answer`` makes it."""
        now = self.clock()
        with self.drip() as drip:
            store = drip.store
            if not store.rate_limit(f"ip:{ip}", now=now, window_seconds=RATE_WINDOW_SECONDS,
                                    limit=self.settings.signup_limit_ip):
                response = answer(429, "Too many signups from your network; please try again "
                                       "in an hour.")
                response.headers["Retry-After"] = str(RATE_WINDOW_SECONDS)
                return response
            self._prune_rate_hits(now)
            if signup is None:
                return answer()
            # Per address, quietly: an address being list-bombed gets no more mail, and the
            # answer says nothing about it.
            if not store.rate_limit(f"email:{signup.email}", now=now,
                                    window_seconds=RATE_WINDOW_SECONDS,
                                    limit=self.settings.signup_limit_address):
                return answer()
            try:
                due = subscribers.sign_up(drip, signup, ip=ip, now=now)
            except InvalidInput as exc:
                return answer(400, str(exc))
        if due is not None:
            self.send_soon(due)
        return answer()
