"""The "yes, keep them" link of the sunset rule's email (``sunset.py``), on `drip serve`:

    GET  /keep/<token>   a page with a button; nothing changes (mail scanners fetch links)
    POST /keep/<token>   the button (a plain form: no JavaScript): she keeps her emails

The token is signed and names her (``sunset_email.read_keep_token``); a forged or altered
one changes nothing, nor does one from an earlier question, one whose wait is over, or the
same POST again (answered once, recorded once).
"""

from __future__ import annotations

from .. import sunset
from ..sunset_email import read_keep_token
from ..tokens import TokenInvalid

NOT_VALID = "This link is not valid. Please use the link exactly as it came in the email."
# What a POST that changed nothing says, by what ``sunset.keep`` found.
REFUSED = {
    sunset.EARLIER: ("This link is from an earlier email", "Please use the button in the most "
                     "recent \"still want these?\" email."),
    sunset.EXPIRED: ("This link has expired", "The emails have stopped. If you would like "
                     "them again, please sign up again on the website."),
    sunset.NOT_ASKED: ("Nothing to do", "There is no question waiting for an answer on this "
                       "address."),
}


class KeepEndpoints:
    """The keep route of ``WebApp`` (``app.py``)."""

    def on_keep(self, request, token):
        now = self.clock()
        try:
            uid, made_at = read_keep_token(self.settings, token)
        except TokenInvalid:
            return self.page("error.html", 400, title="This link does not work",
                             message=NOT_VALID)
        with self.drip() as drip:
            subscriber = drip.store.get_subscriber(uid=uid)
            if subscriber is None:
                return self.page("error.html", 400, title="This link does not work",
                                 message=NOT_VALID)
            if request.method in ("GET", "HEAD"):
                # A mail scanner may fetch this URL: a GET only shows the button.
                return self.page("keep.html", action=request.path)
            found = sunset.keep(drip, subscriber, now=now, made_at=made_at)
        if found in (sunset.KEPT, sunset.ALREADY):
            return self.page("kept.html")
        title, message = REFUSED[found]
        return self.page("error.html", 400, title=title, message=message)
