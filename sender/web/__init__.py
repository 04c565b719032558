"""The subscriber-facing web endpoints, as a WSGI application built on Werkzeug.

``create_app()`` is the factory any WSGI server can call, e.g.
``waitress-serve --call sender.web:create_app``; ``drip serve`` runs it with
Werkzeug's development server for local use.

Routes:

    GET  /                      the signup form
    GET  /snippet               the form's HTML, to paste into the coach's site
    POST /subscribe             a signup (form-encoded, multipart or JSON)
    GET  /confirm/<token>       a page with a button; POST confirms (double opt-in)
    GET  /unsubscribe/<token>   a page with a button; POST unsubscribes (RFC 8058)
    POST /events/<provider>     provider event webhooks (postmark, sendgrid, mailgun, resend)
    GET  /guide                 302 to the current guide page (/guide/pdf: its PDF)
    GET  /guide/<version>/<f>   the guide page or PDF, built on demand, cached for a year
    GET  /archive               the broadcasts sent (/archive/<name>: one; /archive/feed.xml:
                                Atom), for nobody in particular (archive.py)
    GET  /healthz               "ok"
         /admin/...             the coach's dashboard: a second app mounted in front of this
                                one by create_app, unless DRIP_ADMIN=off (sender/web/admin/)

Pages can be overridden from ``DRIP_TEMPLATES_DIR/web/`` (``pages.py``).
"""

from __future__ import annotations

from .app import WebApp, create_app

__all__ = ["WebApp", "create_app"]
