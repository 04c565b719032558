"""A DNS server on 127.0.0.1 that serves a zone given as a dict (dnslib's server), for the
doctor's tests: nothing leaves the machine.

    zone = {"example.com": [("TXT", "v=spf1 include:x ~all"), ("MX", (10, "mx.example.net"))],
            "s1._domainkey.example.com": [("CNAME", "s1.wl.example.net")], ...}

A CNAME is followed within the zone (its records come in the same answer, as a recursive
resolver gives them); a name not in the zone is NXDOMAIN; a name without the asked type is
an empty answer. TXT values longer than 255 bytes are split into pieces, as in real zones.
"""

from __future__ import annotations

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSServer


class _Quiet:
    """dnslib's logger, saying nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _rdata(kind, value):
    if kind == "TXT":
        data = value.encode()
        return TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])
    if kind == "MX":
        preference, host = value
        return MX(host or ".", preference)
    if kind == "CNAME":
        return CNAME(value)
    return A(value) if kind == "A" else AAAA(value)


class ZoneResolver(BaseResolver):
    def __init__(self, zone):
        self.serve(zone)

    def serve(self, zone):
        """Serve ``zone`` from now on (one server can run many tests)."""
        self.zone = {name.lower().rstrip("."): list(records) for name, records in zone.items()}
        self.asked = []

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        kind = QTYPE[request.q.qtype]
        self.asked.append((name, kind))
        if name not in self.zone:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for _ in range(8):                                # follow CNAMEs within the zone
            records = self.zone.get(name, [])
            target = next((v for k, v in records if k == "CNAME"), None)
            if target and kind != "CNAME":
                reply.add_answer(RR(name, QTYPE.CNAME, rdata=_rdata("CNAME", target), ttl=60))
                name = target.lower().rstrip(".")
                continue
            for record_kind, value in records:
                if record_kind == kind:
                    reply.add_answer(RR(name, getattr(QTYPE, kind), rdata=_rdata(kind, value),
                                        ttl=60))
            break
        return reply


class ZoneServer:
    """``ZoneServer(zone).start()``: serving on 127.0.0.1 at ``port`` until ``stop()``."""

    def __init__(self, zone=None):
        self.resolver = ZoneResolver(zone or {})
        self.server = DNSServer(self.resolver, address="127.0.0.1", port=0, logger=_Quiet())
        self.port = self.server.server.server_address[1]

    def start(self):
        self.server.start_thread()
        return self

    def serve(self, zone):
        self.resolver.serve(zone)
        return self

    def stop(self):
        self.server.stop()
        self.server.server.server_close()
