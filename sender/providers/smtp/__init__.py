"""SMTP, for any mail service that offers it: sending on one kept-open connection
(``sending``), the doctor's login check (``doctor``) and its settings (``settings``). It has
no webhook, no suppression list to pull, and cannot hold mail for later."""
