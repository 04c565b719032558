"""Postmark, all of it: sending on two message streams (``sending``), the webhook's basic
auth and event names (``webhook``), the suppression dump for `drip events sync`
(``suppressions``), the doctor's read-only checks (``doctor``) and its settings
(``settings``). Postmark cannot hold mail for later."""

AUTH_HEADER = "X-Postmark-Server-Token"     # the server token travels in this header
