"""The outbox, the default provider: each message an ``.eml`` file in a folder
(``sending``), and its one setting, the folder (``settings``)."""
