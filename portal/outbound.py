"""Outbound HTTP to user-configured URLs (webhooks, notifications) that cannot reach the portal's own network.

Each connection resolves its host once, refuses it if ANY resolved address is private, loopback,
link-local (incl. cloud metadata at 169.254.169.254), shared (100.64/10), unspecified, multicast or
otherwise not globally routable - unless `settings.OUTBOUND_ALLOWED_NETWORKS` (CIDRs) contains it -
and then connects to exactly the address it checked. A second DNS answer (rebinding) therefore never
reaches the socket. Only the socket is redirected: the Host header, TLS SNI and certificate checks
still use the URL's hostname. Redirects are never followed, environment proxies are ignored (a proxy
would connect on our behalf to anything), and every request has a timeout.

IPv6 forms that carry an IPv4 address (mapped, IPv4-compatible, 6to4, Teredo, NAT64) are judged by
that IPv4 address too: `[2002:a9fe:a9fe::1]` is 169.254.169.254 through 6to4.

The one exception is the built-in demo receiver while it is on (`make demo`): the portal's own
`PORTAL_BASE_URL/demo/receiver/<kind>`, and nothing else on its host, is reached wherever it is.
"""
from __future__ import annotations

import functools
import ipaddress
import re
import socket
import sys
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

DEFAULT_TIMEOUT_SECONDS = 10.0

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598


class OutboundRefused(Exception):
    """The destination resolves to an address outbound requests may not reach. Not a connection error:
    retrying cannot help, so callers must not retry it."""

    def __init__(self, host, ip, reason):
        self.host, self.ip, self.reason = host, str(ip) if ip is not None else None, reason
        where = f"{host} ({ip})" if ip is not None and str(ip) != host else str(host)
        super().__init__(f"Outbound request to {where} refused: {reason}.")


@functools.lru_cache(maxsize=16)
def _parse_networks(cidrs: tuple) -> tuple:
    try:
        return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_NETWORKS: {exc}") from None


def allowed_networks() -> tuple:
    """Read at call time, so a changed setting (or a test's override) applies to the next connection."""
    value = getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", ()) or ()
    if isinstance(value, str):
        value = value.split(",")
    return _parse_networks(tuple(value))


def address_refusal(ip) -> str | None:
    """Why `ip` may not be reached, or None if it may."""
    ip = ipaddress.ip_address(ip)
    if any(ip.version == network.version and ip in network for network in allowed_networks()):
        return None
    if ip.version == 6:
        return _ipv6_refusal(ip)
    if ip in _SHARED_ADDRESS_SPACE:
        return "it is a shared (carrier-grade NAT) address"
    if ip.is_reserved:  # 240/4, which ipaddress also counts as private
        return "it is a reserved address"
    return _refusal(ip)


def _refusal(ip) -> str | None:
    if ip.is_loopback:
        return "it is a loopback address"
    if ip.is_link_local:
        return "it is a link-local address"
    if ip.is_unspecified:
        return "it is the unspecified address"
    if ip.is_multicast:
        return "it is a multicast address"
    if ip.is_private:
        return "it is a private address"
    if ip.is_reserved or not ip.is_global:
        return "it is a reserved address"
    return None


# IPv6 networks refused whatever this Python's ipaddress says of them: not globally reachable (IANA
# special-purpose registry), or a tunnel to an address we cannot check.
_REFUSED_IPV6 = (
    (ipaddress.ip_network("fec0::/10"), "it is a site-local address"),
    (ipaddress.ip_network("2001::/32"), "it is a Teredo tunnel address"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "it is a local-use NAT64 address"),
    (ipaddress.ip_network("3fff::/20"), "it is a documentation address"),
    (ipaddress.ip_network("5f00::/16"), "it is a segment-routing address"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d; also holds :: and ::1
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known NAT64 prefix, DNS64 answers on IPv6-only networks


def _embedded_ipv4(ip):
    """(form, IPv4 address) when `ip` carries an IPv4 address that a connection to it reaches, else None."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]  # (server, client): packets go to the client
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return "NAT64", low32
    if ip in _IPV4_TRANSLATED:
        return "IPv4-translated", low32
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible", low32
    return None


def _ipv6_refusal(ip):
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        form, ipv4 = embedded
        reason = address_refusal(ipv4)
        if reason:
            return f"it is the {form} form of {ipv4}, {reason.removeprefix('it is ')}"
        if form in ("IPv4-mapped", "NAT64"):
            return None  # a public IPv4 address, reached directly or through the network's NAT64 gateway
        if form == "IPv4-compatible":
            return "it is a deprecated IPv4-compatible address"
    for network, reason in _REFUSED_IPV6:
        if ip in network:
            return reason
    return _refusal(ip)


def resolve_checked(host: str, port: int) -> list:
    """getaddrinfo once; every answer must be allowed. Returns the addrinfo tuples to connect to."""
    literal = _ip_literal(host)
    if literal is not None and (reason := address_refusal(literal)):
        raise OutboundRefused(host, literal, reason)  # before any lookup (and where IPv6 is off)
    infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    if not infos:
        raise socket.gaierror(f"{host} did not resolve")
    for *_rest, sockaddr in infos:
        reason = address_refusal(sockaddr[0].split("%", 1)[0])  # drop an IPv6 zone id
        if reason:
            raise OutboundRefused(host, sockaddr[0], reason)
    return infos


def _ip_literal(host):
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _open_socket(infos, timeout, source_address, socket_options):
    """Connect to the first reachable checked address (urllib3's create_connection, minus the lookup)."""
    error = None
    for family, socktype, proto, _canonname, sockaddr in infos:
        sock = None
        try:
            sock = socket.socket(family, socktype, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error


class _CheckedConnectionMixin:
    def _new_conn(self):
        host = self._dns_host.strip("[]")
        try:
            infos = resolve_checked(host, self.port)
            sock = _open_socket(infos, self.timeout, self.source_address, self.socket_options)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass  # connect() wraps our socket with SNI and hostname verification for self.host


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class DirectAdapter(HTTPAdapter):
    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise OutboundRefused(proxy, None, "outbound requests do not go through proxies")


class CheckedAdapter(DirectAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPConnectionPool, "https": _CheckedHTTPSConnectionPool}


_DEFAULT_PORTS = {"http": 80, "https": 443}
_DEMO_RECEIVER_PATH = r"/demo/receiver/[A-Za-z0-9_-]+"  # web/urls.py: demo/receiver/<kind>


def _is_demo_receiver_url(url: str) -> bool:
    """Whether `url` is the built-in demo receiver's (PORTAL_BASE_URL/demo/receiver/<kind>) while it is on: the
    starter actions' webhooks reach it on the portal's own, private, address; other paths and ports do not."""
    if not settings.DEMO_RECEIVER_ENABLED:
        return False
    base, target = urlsplit(settings.PORTAL_BASE_URL), urlsplit(url)
    try:
        origins = [(parts.scheme.lower(), parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme.lower()))
                   for parts in (base, target)]
    except ValueError:  # a port out of range
        return False
    path = re.escape(base.path.rstrip("/")) + _DEMO_RECEIVER_PATH
    return origins[0] == origins[1] and re.fullmatch(path, target.path) is not None


class OutboundSession(requests.Session):
    """A Session that never follows redirects and always has a timeout."""

    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout
        self.trust_env = False  # no proxies or .netrc credentials from the environment
        self.adapters.clear()
        self.mount("https://", CheckedAdapter(max_retries=0))
        self.mount("http://", CheckedAdapter(max_retries=0))
        self._demo_receiver_adapter = DirectAdapter(max_retries=0)

    def get_adapter(self, url):
        if _is_demo_receiver_url(url):
            return self._demo_receiver_adapter
        return super().get_adapter(url)

    def close(self):
        super().close()
        self._demo_receiver_adapter.close()

    def request(self, method, url, **kwargs):
        kwargs["allow_redirects"] = False
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kwargs["proxies"] = {}
        return super().request(method, url, **kwargs)


def outbound_session(*, timeout: float | tuple | None = None) -> OutboundSession:
    """The session to use for every request to a user-configured URL (see the module docstring)."""
    return OutboundSession(timeout if timeout is not None else DEFAULT_TIMEOUT_SECONDS)
