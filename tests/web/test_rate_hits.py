"""The signup rate-limit rows: an erasure takes the person's with it, and old rows go."""

from __future__ import annotations

from datetime import timedelta

import requests
from click.testing import CliRunner

from sender.cli import cli
from sender.web.signup import RATE_WINDOW_SECONDS


def rate_hits(server):
    """Every (key, at) row of the rate-limit table, straight from the database."""
    store = server.drip().store
    return sorted((row["key"], str(row["at"])) for row in
                  store.conn.execute("SELECT key, at FROM rate_hits").fetchall())


def signup(server, email):
    response = requests.post(f"{server.url}/subscribe", timeout=10,
                             data={"email": email, "consent": "yes"})
    assert response.status_code == 200


def test_erasing_a_person_removes_her_address_and_ip_from_the_rate_limits(start_server, engine):
    server = start_server(**engine)
    signup(server, "ana@example.com")
    signup(server, "ana@example.com")
    signup(server, "bea@example.com")
    keys = {key for key, _ in rate_hits(server)}
    assert {"email:ana@example.com", "ip:127.0.0.1"} <= keys
    result = CliRunner().invoke(cli, ["subscribers", "delete",
                                      "ana@example.com", "--yes"], env=server.env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    left = rate_hits(server)
    assert not [row for row in left if "ana@example.com" in row[0] or "127.0.0.1" in row[0]]
    assert [key for key, _ in left] == ["email:bea@example.com"]


def test_rate_limit_rows_older_than_the_window_are_pruned(start_server, engine):
    server = start_server(**engine)
    store = server.drip().store
    now = server.clock.now
    window = timedelta(seconds=RATE_WINDOW_SECONDS)
    for key, moment in (("email:old@example.com", now - 2 * window),
                        ("ip:192.0.2.7", now - window - timedelta(seconds=1)),
                        ("email:recent@example.com", now - window / 2)):
        assert store.rate_limit(key, now=moment, window_seconds=RATE_WINDOW_SECONDS, limit=5)
    signup(server, "cy@example.com")
    keys = [key for key, _ in rate_hits(server)]
    assert sorted(keys) == ["email:cy@example.com", "email:recent@example.com", "ip:127.0.0.1"]
