"""Resend, all of it: batches with idempotency keys, holding mail up to 30 days and
cancelling it (``sending``), the Svix-signed webhook (``webhook``), the suppression list for
`drip events sync` (``suppressions``), the doctor's read-only checks (``doctor``) and its
settings (``settings``)."""
