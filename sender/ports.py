"""Listening on a local port: a port in use is a clear error, not a traceback."""

from __future__ import annotations

import errno
import socket

from .errors import DripError


def listen_error(host, port, exc):
    """The DripError for an OSError met while binding ``host``:``port``."""
    if exc.errno == errno.EADDRINUSE:
        return DripError(f"port {port} on {host} is in use (is another drip serve running?): "
                         "choose another with --port")
    if exc.errno == errno.EACCES:
        return DripError(f"not allowed to listen on port {port} on {host} (ports below 1024 "
                         "need root): choose another with --port")
    reason = exc.strerror or str(exc)
    return DripError(f"cannot listen on {host} port {port}: {reason} (check --host and --port)")


def check_free(host, port):
    """Raise the DripError of ``listen_error`` unless a server could listen on host:port now
    (bound the way servers bind, with SO_REUSEADDR, and released at once)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise listen_error(host, port, exc) from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise listen_error(host, port, exc) from None
