"""Mailgun, all of it: sending one multipart request per message, holding mail up to an
hour (``sending``), the signed webhook (``webhook``), the suppression lists for
`drip events sync` (``suppressions``), the doctor's read-only checks (``doctor``) and its
settings (``settings``). Mailgun cannot cancel one held message."""
