"""Who a request comes from, and from which web page: the client's address and the Origin check.

- `Clients.address(req)`: the TCP peer, unless the peer is one of `[api]
  trusted_proxies`: then the nearest address of its X-Forwarded-For that is
  not a trusted proxy (walking from the right: the left part is whatever the
  client wrote). Nobody else's X-Forwarded-For is believed.
- `OriginCheck`: a POST (PUT, PATCH, DELETE) that carries an `Origin` header
  must come from `[api] cors_origins` or from the API's own origin (its
  scheme and Host, X-Forwarded-Proto believed from a trusted proxy only).
  Browsers send Origin with every cross-site POST: a form on another site
  can no longer log a browser in (login CSRF) or out. Clients that send no
  Origin (curl, scripts) are not browsers carrying someone's cookies.
"""

from __future__ import annotations

import ipaddress

import falcon

from .errors import Forbidden

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _ip(text: str):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


class Clients:
    """The trusted proxies, and what they say about the requests they forward."""

    def __init__(self, trusted_proxies: tuple[str, ...] = ()):
        self.networks = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)

    def trusted(self, address: str | None) -> bool:
        ip = _ip(address or "")
        return ip is not None and any(ip in net for net in self.networks)

    def address(self, req: falcon.Request) -> str:
        """The client's address, as far as the trusted proxies tell."""
        peer = req.remote_addr or "unknown"
        if not self.trusted(peer):
            return peer
        hops = [h.strip() for h in (req.get_header("X-Forwarded-For") or "").split(",") if h.strip()]
        for hop in reversed(hops):
            if _ip(hop) is None:  # garbage where an address should be: the last trusted hop is all we know
                return peer
            if not self.trusted(hop):
                return str(_ip(hop))
            peer = hop
        return peer

    def own_origin(self, req: falcon.Request) -> str | None:
        """scheme://host[:port] of the API as the browser sees it (None without a Host header)."""
        host = req.get_header("Host")
        if not host:
            return None
        scheme = req.scheme
        if self.trusted(req.remote_addr):
            scheme = (req.get_header("X-Forwarded-Proto") or scheme).split(",")[0].strip().lower()
        return f"{scheme}://{host.lower()}"


class OriginCheck:
    """Middleware: a state-changing request from a browser page must come from an allowed origin (else 403)."""

    def __init__(self, clients: Clients, cors_origins: tuple[str, ...]):
        self.clients = clients
        self.allowed = frozenset(o.lower() for o in cors_origins)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method not in UNSAFE:
            return
        origin = req.get_header("Origin")
        if origin is None:
            return
        origin = origin.strip().lower()
        if origin in self.allowed or origin == self.clients.own_origin(req):
            return
        raise Forbidden(f"requests from the origin {origin[:100]!r} are not allowed here "
                        f"(only [api] cors_origins and the API's own origin)")
