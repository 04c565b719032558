"""SendGrid, all of it: sending one request per message, holding mail up to 72 hours and
cancelling it (``sending``), the signed event webhook (``webhook``), the suppression lists for
`drip events sync` (``suppressions``), the doctor's read-only checks (``doctor``) and its
settings (``settings``)."""
