"""A process that unsubscribes people while a broadcast is being handed over, for
``test_broadcast_races.py``: the web server or a script doing it beside `drip send`.

    python -m tests.reliability.unsubscriber CAMPAIGN EMAILS_FILE OUT_FILE   # settings: environment

It unsubscribes each address of EMAILS_FILE (one a line) in turn through the library, each
in its own transaction, spread over the hand-off: the k-th of n waits until k/(n+1) of
CAMPAIGN's rows have left ``scheduled`` (claimed, sent, or stopped), the first until one
has. Inside that transaction, which holds the write lock so that no sender can mark
anything of hers in between, it notes her rows handed over so far; just after the commit,
the time. One JSON line each in OUT_FILE: {"email", "id", "committed_at" (time.time()),
"handed": {delivery id: handed_at}}. Exits 1 if the broadcast stops moving for two minutes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sender import ledger, subscribers
from sender.config import Settings
from sender.drip import Drip


def wait_for(store, campaign, share):
    """Until ``share`` of the campaign's rows (at least one) have left ``scheduled``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts = store.campaign_state_counts(campaign)
        total = sum(counts.values())
        if total - counts.get(ledger.SCHEDULED, 0) >= max(share * total, 1):
            return True
        time.sleep(0.002)     # polling the senders' progress, with a deadline
    return False


def main(argv=None):
    campaign, emails_file, out_file = argv or sys.argv[1:]
    emails = Path(emails_file).read_text(encoding="utf-8").split()
    drip = Drip(Settings.from_env(dict(os.environ)))
    store = drip.store
    try:
        with open(out_file, "w", encoding="utf-8") as out:
            for k, email in enumerate(emails):
                if not wait_for(store, campaign, k / (len(emails) + 1)):
                    print(f"{campaign}: no progress for two minutes", file=sys.stderr)
                    return 1
                person = store.get_subscriber(email=email)
                with store.transaction():
                    subscribers.unsubscribe(drip, person, now=datetime.now(UTC))
                    handed = {d.id: d.handed_at.isoformat()
                              for d in store.deliveries(subscriber_id=person.id)
                              if d.handed_at is not None}
                committed = time.time()
                out.write(json.dumps({"email": email, "id": person.id, "committed_at": committed,
                                      "handed": handed}) + "\n")
                out.flush()
        return 0
    finally:
        drip.close()


if __name__ == "__main__":
    sys.exit(main())
