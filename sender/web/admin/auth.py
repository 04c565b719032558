"""Who may open the dashboard: passwords, logins (rate limit and lockout), sessions and the
audit log.

Passwords are hashed with argon2id (argon2-cffi's defaults, the RFC 9106 low-memory
profile); only the hash is stored, and a hash made with weaker parameters is replaced at the
next login. A login is refused without looking at the password when one address has tried
``PER_ADDRESS`` times in ``WINDOW`` (it is slowed), or when a name has had ``FAILURES``
attempts in a row without a success in ``WINDOW`` (it is locked until the oldest of them is
``WINDOW`` old); the counting is the store's ``rate_limit``, shared by every server process.
A session is a random token in a cookie; the store keeps only its SHA-256, so a copy of the
database opens no session. A session ends after ``DRIP_ADMIN_SESSION_TIMEOUT`` without a
request, after ``LIFETIME`` in any case, at logout, and when the password is set again.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ...errors import InvalidInput

DEFAULT_USER = "coach"
MIN_LENGTH, MAX_LENGTH = 12, 1024
WINDOW = 15 * 60          # seconds: the rate limit's and the lockout's window
FAILURES = 5              # attempts in a row for one name before it is locked
PER_ADDRESS = 20          # attempts from one address per window
LIFETIME = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)   # how often a session's last-seen time is written
HASHER = PasswordHasher()


def check_name(name):
    """A user name: 1 to 64 letters, digits, '.', '_', '-' or '@'."""
    name = (name or "").strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise InvalidInput(f"user name {name[:64]!r} must be 1 to 64 letters, digits, '.', '_', "
                           "'-' or '@', e.g. coach")
    return name


def check_password(password):
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password must be at least {MIN_LENGTH} characters long (a few "
                           "unrelated words are easy to type and hard to guess)")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"the password must be at most {MAX_LENGTH} characters long")
    if not password.strip():
        raise InvalidInput("the password must not be only spaces")
    return password


def set_password(store, name, password, *, now):
    """Store the hash of ``password`` for ``name`` (the dashboard is on from then), end the
    sessions that name had, and log it. Returns the name as stored."""
    name = check_name(name)
    digest = HASHER.hash(check_password(password))
    with store.transaction():
        store.set_admin_password(name, digest, now=now)
        ended = store.end_admin_sessions(name=name)
        store.add_audit(at=now, user=name, action="password set",
                        details={"sessions_ended": ended})
    return name


@lru_cache(maxsize=1)
def _stand_in():
    """A hash to check against when the name is unknown, so that takes as long as a known
    name with a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(24))


def _verify(stored, password):
    try:
        return HASHER.verify(stored or _stand_in(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class Login:
    outcome: str                 # "ok", "wrong", "locked" or "slowed"
    name: str
    token: str | None = None     # the session cookie's value, when ok


def log_in(store, name, password, *, ip, now):
    """Check a login and, when it is right and allowed, start a session. Every attempt is
    written to the audit log."""
    shown = _printable(name)[:64]
    if not store.rate_limit(f"admin-ip:{ip}", now=now, window_seconds=WINDOW, limit=PER_ADDRESS):
        _audit_refusal(store, shown, "login refused: too many attempts from this address",
                       f"admin-ip:{ip}", now=now, ip=ip)
        return Login("slowed", shown)
    key = f"admin-name:{shown}"
    if not store.rate_limit(key, now=now, window_seconds=WINDOW, limit=FAILURES):
        _audit_refusal(store, shown, "login refused: name locked after failed attempts", key,
                       now=now, ip=ip)
        return Login("locked", shown)
    stored = store.admin_password(shown) if shown else None
    with _CHECKING:       # argon2 takes 64 MiB a check: a few at a time, whatever comes in
        right = _verify(stored, password or "")
    if not right:
        audit(store, shown, "login failed", now=now, ip=ip)
        return Login("wrong", shown)
    with store.transaction():
        store.forget_rate_hits(keys=[key])
        if HASHER.check_needs_rehash(stored):
            store.set_admin_password(shown, HASHER.hash(password), now=now)
        token = secrets.token_urlsafe(32)
        store.add_admin_session(token_hash(token), name=shown, csrf=secrets.token_urlsafe(32),
                                now=now)
        audit(store, shown, "login", now=now, ip=ip)
    return Login("ok", shown, token)


# Password checks at once, at most (each argon2 check holds 64 MiB for a moment).
_CHECKING = threading.BoundedSemaphore(2)


def _audit_refusal(store, name, action, key, *, now, ip):
    """A refusal is logged once per limited key and window, not once per attempt, so a
    flood of refused logins cannot grow the audit log or bury the real entries."""
    if store.rate_limit(f"admin-audit:{key}", now=now, window_seconds=WINDOW, limit=1):
        audit(store, name, action, now=now, ip=ip)


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    name: str
    csrf: str
    token_hash: str


def session_for(store, token, *, now, timeout):
    """The live session whose cookie holds ``token``, or None (an expired one is deleted)."""
    if not token or len(token) > 128:
        return None
    digest = token_hash(token)
    row = store.admin_session(digest)
    if row is None:
        return None
    if now - row["seen_at"] > timeout or now - row["created_at"] > LIFETIME:
        store.end_admin_sessions(token_hash=digest)
        return None
    if now - row["seen_at"] >= TOUCH_EVERY:
        store.touch_admin_session(digest, now=now)
    return Session(row["name"], row["csrf"], digest)


def log_out(store, session, *, now, ip):
    with store.transaction():
        store.end_admin_sessions(token_hash=session.token_hash)
        audit(store, session.name, "logout", now=now, ip=ip)


def prune(store, *, now, timeout):
    """Delete the sessions idle for longer than ``timeout``."""
    return store.end_admin_sessions(seen_before=now - timeout)


def audit(store, user, action, *, now, ip=None, subscriber_id=None, target=None, details=None):
    return store.add_audit(at=now, user=user, action=action, subscriber_id=subscriber_id,
                           target=target, details=details, ip=ip)


def _printable(text):
    return "".join(c for c in str(text or "").strip() if c.isprintable())
