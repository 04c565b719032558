"""The coach's dashboard: her list, her sequences and her results in a browser.

A second WSGI application, mounted at ``/admin`` in front of the public one by
``mount_admin`` (a Werkzeug ``DispatcherMiddleware``), so it runs in the same process, on the
same store, campaigns and background sender, but has its own routing, sessions, CSRF tokens
and Content-Security-Policy, and the public endpoints do not change. It is off (every
``/admin`` address answers the public 404) while no password is stored (``drip admin
set-password``) or when ``DRIP_ADMIN=off``.

Routes (under /admin):

    GET       /                          overview: signups, confirmations, unsubscribes and
                                         mail sent per day or week; mail due; problems; brake
    GET POST  /login                     POST /logout
    GET       /subscribers               search, segment, keyset paging
    GET POST  /subscribers/new           add one by hand, with the consent she stated
    GET       /subscribers/<id>          her data, consent, tags, fields and timeline
    GET       /subscribers/<id>/data.json   everything stored about her
    GET POST  /subscribers/<id>/pause|resume|unsubscribe|erase   a confirmation, then the change
    GET       /campaigns                 steps, who is where, the report and its funnel, the brake
    GET POST  /campaigns/<id>/resume     lift the brake
    GET       /activity                  the audit log
    GET       /admin.css                 the stylesheet, in the coach's colours
"""

from __future__ import annotations

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from .routes import AdminApp

PREFIX = "/admin"


def mount_admin(web):
    """Mount the dashboard at /admin in front of ``web`` (a WebApp), unless DRIP_ADMIN=off."""
    if web.settings.admin_enabled:
        web.admin = AdminApp(web)
        web.wsgi_app = DispatcherMiddleware(web.wsgi_app, {PREFIX: web.admin})
    return web


__all__ = ["AdminApp", "mount_admin"]
