"""The one HTTP layer every API provider uses.

One ``requests.Session`` per provider (connection reuse), a default timeout, a
rate limit in requests per second, short in-process retries of 429, 5xx and
transport errors with exponential backoff and jitter (honouring Retry-After),
and one place that turns transport errors and bad JSON into an ``Answer``.
A 401 or 403 raises ``ProviderError`` at once, naming the key to check: a bad
key stops the run at the first answer. Secrets never reach logs or errors.

``HttpProvider`` is the pipeline the provider modules share: split the
messages into requests, send the first alone (so a bad key is found before
anything else goes out), the rest with several requests in flight.
``http_client`` builds a provider's client from settings, for its sending, its
`drip events sync` and its doctor checks alike.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ..config import HTTP_ATTEMPTS, HTTP_MAX_WAIT
from ..errors import DripError, ProviderError
from ..logging_setup import Masker
from .base import ACCEPTED, REJECTED, RETRY, SCHEDULED, UNKNOWN, Provider, SendResult

log = logging.getLogger("drip.providers.http")

DEFAULT_TIMEOUT = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass
class Answer:
    """What came back for one request: a status and parsed body, or a transport error."""

    status: int | None
    headers: dict = field(default_factory=dict)
    body: object = None          # parsed JSON, or None
    error: str | None = None     # a transport error (timeout, reset, refused)
    retry_after: float | None = None
    bad_json: bool = False
    ambiguous: bool = False      # the request may have been processed (timeout, drop after send)
    source: object = field(default=None, repr=False, compare=False)   # () -> ``text``

    @cached_property
    def text(self):
        """The raw body with every secret masked, for error messages: made when first read,
        so an answer that goes well (a batch of 500, say) is never decoded and masked."""
        return "" if self.source is None else self.source()

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self):
        return self.status is None or self.status in RETRY_STATUSES

    def describe(self, message=None):
        """A short error text: the provider's own message where it gave one."""
        if self.error:
            return self.error
        detail = message or self.text.strip()[:300] or "(empty body)"
        return f"HTTP {self.status}: {detail}"


def parse_retry_after(value, *, now=None):
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


class RateLimiter:
    """At most ``rate`` acquisitions per second, spread evenly; thread-safe.

    ``clock`` and ``sleep`` are injectable so tests never wait for real time.
    """

    def __init__(self, rate, *, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = None
        self._lock = threading.Lock()

    def acquire(self):
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            start = now if self._next is None or self._next < now else self._next
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


class HttpClient:
    """A session for one provider. ``key_setting`` names the setting to check on a 401/403;
    ``headers`` are its authentication headers (their values are secrets, masked everywhere);
    ``extra_headers`` go on every request too (tests use them for Prism's ``Prefer``)."""

    def __init__(self, name, base_url, *, key_setting, headers=None, auth=None, secrets=(),
                 timeout=DEFAULT_TIMEOUT, retries=HTTP_ATTEMPTS - 1, max_wait=HTTP_MAX_WAIT,
                 rate_limit=None, concurrency=1, extra_headers=None, sleep=time.sleep, clock=time.monotonic,
                 rng=random):
        self.name, self.base_url = name, base_url.rstrip("/")
        self.key_setting = key_setting
        self.timeout, self.retries, self.max_wait = timeout, retries, max_wait
        self.sleep, self.rng = sleep, rng
        self.secrets = [s for s in secrets if s]
        if auth and auth[1]:
            self.secrets.append(auth[1])     # the user (Mailgun's "api") is no secret
        self.limiter = RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self.concurrency = max(concurrency, 1)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(concurrency, 1), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": "drip", "Accept": "application/json"})
        self.session.headers.update(headers or {})
        self.session.headers.update(extra_headers or {})
        for value in (headers or {}).values():
            if value:
                self.secrets += [value, value.rpartition(" ")[2]]     # "Bearer KEY" and KEY
        self.session.auth = auth
        self.masker = Masker(self.secrets, users=auth[:1] if auth else ())

    def mask(self, text):
        """``text`` with every form of this client's secrets masked (``Masker``)."""
        return self.masker(text)

    def close(self):
        self.session.close()

    def request(self, method, path, *, retries=None, idempotent=False, **kwargs):
        """Send one request, retrying 429, 5xx and transport errors a few times in-process.

        Returns the last ``Answer``; its ``retry_after`` says how long the provider asked
        to wait when that is longer than this layer is willing to wait itself.

        A timeout or a connection dropped after the request was sent is retried only when
        the request is ``idempotent`` (an Idempotency-Key makes a repeat harmless); otherwise
        it comes back ``ambiguous`` so that nothing is sent twice.
        """
        retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            self.limiter.acquire()
            answer = self._once(method, path, **kwargs)
            if answer.status in (401, 403):
                raise ProviderError(
                    f"{self.name} refused the request ({answer.describe(self.error_message(answer))}); "
                    f"check {self.key_setting}", status=answer.status, body=answer.text)
            if not answer.retryable or attempt >= retries or (answer.ambiguous and not idempotent):
                return answer
            wait = min(0.5 * 2 ** attempt, 8.0) * self.rng.uniform(0.8, 1.2)
            if answer.retry_after is not None:
                if answer.retry_after > self.max_wait:
                    return answer
                wait = max(wait, answer.retry_after)
            attempt += 1
            log.debug("%s: %s; retry %d in %.2fs", self.name, answer.describe(), attempt, wait)
            self.sleep(wait)

    def read(self, path, **params):
        """The parsed body of a read-only GET (retried as usual); a DripError naming the
        path when there is none."""
        answer = self.request("GET", path, params=params or None)
        if not answer.ok or answer.body is None:
            raise DripError(f"{self.name}: could not read {path}: "
                            f"{answer.describe(self.error_message(answer))}")
        return answer.body

    def error_message(self, answer):
        """The provider's own error text from a JSON body, if any."""
        body = answer.body
        if isinstance(body, dict):
            for key in ("Message", "message", "error"):
                if isinstance(body.get(key), str):
                    return self.mask(body[key])
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                return self.mask("; ".join(str(e.get("message", e)) if isinstance(e, dict)
                                           else str(e) for e in errors))
        return None

    def _once(self, method, path, **kwargs):
        url = self.base_url + path
        kwargs.setdefault("timeout", self.timeout)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", self.mask(f"{self.name} -> {method} {url} headers="
                                      f"{dict(self.session.headers, **kwargs.get('headers', {}))} "
                                      f"body={_preview(kwargs)}"))
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.ConnectTimeout:
            return Answer(None, error=f"{self.name}: could not connect within {kwargs['timeout']}s")
        except requests.Timeout:
            return Answer(None, ambiguous=True,
                          error=f"{self.name} did not answer within {kwargs['timeout']}s "
                                "(timed out; it may or may not have sent)")
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                return Answer(None, error=self.mask(f"{self.name}: connection to "
                                                    f"{self.base_url} failed "
                                                    f"({type(exc).__name__})"))
            return Answer(None, ambiguous=True,
                          error=self.mask(f"{self.name}: connection dropped after the request "
                                          "was sent (it may or may not have sent)"))
        except requests.RequestException as exc:
            return Answer(None, error=self.mask(f"{self.name}: request failed ({exc})"))
        answer = Answer(response.status_code, dict(response.headers),
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                        source=lambda: self.mask(response.text))
        if response.content:
            try:
                answer.body = response.json()
            except ValueError:
                answer.bad_json = True
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s <- %s %s", self.name, response.status_code, answer.text[:500])
        return answer


def _preview(kwargs):
    if "json" in kwargs:
        text = json.dumps(kwargs["json"], ensure_ascii=False)
    elif "files" in kwargs:
        text = str([(k, v[1] if v[0] is None else f"<file {v[0]}>") for k, v in kwargs["files"]])
    else:
        data = kwargs.get("data", "")
        # A body written as bytes (JSON) is shown as the text it is, in which the masker
        # knows every form of a key, never as the repr of bytes, which doubles each escape.
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return text if len(text) <= 2000 else text[:2000] + "..."


def _never_connected(exc):
    """Whether a ConnectionError happened before the request could be sent (refused, no
    route, name not found), so that sending again cannot duplicate anything."""
    seen, todo = set(), [exc]
    while todo:
        cause = todo.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, (ConnectionRefusedError, urllib3.exceptions.NewConnectionError,
                              urllib3.exceptions.NameResolutionError)):
            return True
        todo += [getattr(cause, "reason", None), cause.__cause__, cause.__context__]
        todo += [a for a in getattr(cause, "args", ()) if isinstance(a, BaseException)]
    return False


def failure(message, answer, text=None, *, suppress=False):
    """The SendResult for a request that did not succeed: unknown (it may have gone out),
    retry later, or rejected for good."""
    error = answer.describe(text)
    if answer.ambiguous:
        return SendResult(message.delivery_id, UNKNOWN, error=error)
    if answer.retryable:
        return SendResult(message.delivery_id, RETRY, error=error, retry_after=answer.retry_after)
    return SendResult(message.delivery_id, REJECTED, error=error, suppress=suppress)


class HttpProvider(Provider):
    """The shared pipeline: ``requests_for`` splits messages, ``send_request`` sends one
    group and returns a SendResult per message. Subclasses write only those two."""

    key_setting = ""
    can_cancel = False
    default_rate = None          # requests per second when DRIP_RATE_LIMIT is empty (None: no limit)
    default_concurrency = 1      # requests in flight when DRIP_CONCURRENCY is empty

    def __init__(self, http):
        self.http = http
        self._stopped = None
        self._proven = False        # the provider has taken a message: the key works

    def requests_for(self, messages):
        """Groups of messages sent in one request each; default one message per request."""
        return [[m] for m in messages]

    def handoff_chunks(self, messages):
        """As many requests as go out at once (DRIP_CONCURRENCY), a chunk at a time."""
        groups = self.requests_for(messages)
        step = max(self.concurrency, 1)
        return [[m for group in groups[i:i + step] for m in group]
                for i in range(0, len(groups), step)]

    @abstractmethod
    def send_request(self, group):
        """Send one group in one request; return a SendResult per message of the group."""

    def send(self, messages):
        if self._stopped is not None:
            # A stop met after others of a hand-off went out ends this run, once: the next run
            # (a worker keeps its provider) asks again, its first request alone.
            stopped, self._stopped, self._proven = self._stopped, None, False
            raise stopped
        self.check_schedulable(messages)
        groups = self.requests_for(messages)
        if not groups:
            return []
        results = {id(m): None for m in messages}
        rest = groups
        if not self._proven:
            # The first request alone until the provider has taken a message: a bad key
            # stops the run before anything else is sent. After that every request of a
            # hand-off goes at once (DRIP_CONCURRENCY).
            for message, result in zip(groups[0], self.send_request(groups[0]), strict=True):
                results[id(message)] = result
                self._proven = self._proven or result.outcome in (ACCEPTED, SCHEDULED)
            rest = groups[1:]
        met = []        # the stopping error met so far: a group not yet sent is not sent

        def caught(group):
            """One group's results, or the stopping error it met (a refused key)."""
            if met:
                return met[0]
            try:
                return self.send_request(group)
            except ProviderError as exc:
                met.append(exc)
                return exc

        workers = min(self.concurrency, len(rest))
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix=f"drip-{self.name}") as pool:
                outcomes = list(pool.map(caught, rest))
        else:
            outcomes = [caught(group) for group in rest]
        stops = [o for o in outcomes if isinstance(o, ProviderError)]
        if stops and len(stops) == len(groups):
            # Every request of it was refused (a key revoked, an account stopped): nothing
            # went, so the run stops here and the whole hand-off goes back untouched.
            self._proven = False
            raise stops[0]
        for group, outcome in zip(rest, outcomes, strict=True):
            if isinstance(outcome, ProviderError):
                # Others of this hand-off went out: what went is recorded, this group (sent
                # and refused, or not sent at all) is tried again later, and the run stops at
                # the next call.
                self._stopped = self._stopped or outcome
                outcome = [SendResult(m.delivery_id, RETRY, error=str(outcome)) for m in group]
            for message, result in zip(group, outcome, strict=True):
                results[id(message)] = result
        return [results[id(m)] for m in messages]

    def check_schedulable(self, messages):
        if self.max_schedule_ahead is None and any(m.send_at for m in messages):
            raise ProviderError(f"{self.name} cannot hold messages for later; run drip send "
                                "from cron or drip worker instead")

    @property
    def concurrency(self):
        return self.http.concurrency

    def close(self):
        self.http.close()


def http_client(settings, provider, url_setting, *, headers=None, auth=None, extra_headers=None):
    """The ``HttpClient`` for the provider class ``provider``: its API URL from ``url_setting``,
    the timeout, rate limit and concurrency as config read and checked them, else the
    provider's own defaults."""
    rate = settings.rate_limit
    return HttpClient(provider.name, settings.require(url_setting), key_setting=provider.key_setting,
                      headers=headers, auth=auth, secrets=settings.secrets(),
                      timeout=settings.http_timeout,
                      rate_limit=rate if rate is not None else provider.default_rate,
                      concurrency=settings.concurrency or provider.default_concurrency,
                      extra_headers=extra_headers)
