"""The links in the emails, on `drip serve`: confirming a signup and unsubscribing.

    GET  /confirm/<token>       a page with a button; POST confirms (double opt-in)
    GET  /unsubscribe/<token>   a page with a button; POST unsubscribes (RFC 8058 one-click)

A GET never changes anything (mail scanners fetch links); the token is signed and names
the subscriber (``sender.tokens``).
"""

from __future__ import annotations

from .. import subscribers as subscriber_ops
from ..events import record_unsubscribe
from ..models import ENDED_STATUSES
from ..tokens import CONFIRM, UNSUBSCRIBE, TokenInvalid

ONE_CLICK = "List-Unsubscribe=One-Click"


class LinkEndpoints:
    """The confirm and unsubscribe routes of ``WebApp`` (``app.py``)."""

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
