"""The outbound network guard: tenant-given URLs reach only public addresses unless allowed.

Every request ordermill makes to a URL a tenant wrote (connector calls, export downloads) goes
through ``OutboundClient``, the one guarded seam. It decides three times, each on what is really
dialled:

1. before the request, on the host as aiohttp will use it, i.e. after yarl has normalised it
   (IDNA, Unicode digits and full stops, case): ``https://１２７.０.０.１/`` is judged as
   127.0.0.1, and legacy IPv4 spellings (``127.1``, ``2130706433``, ``0x7f.0.0.1``) are refused;
2. in the resolver, on every address a host name resolves to: only allowed addresses are
   handed to the connector, so there is no window for DNS rebinding;
3. in the socket factory, on the address each socket is about to connect to, which also covers
   IP literals that aiohttp dials without asking the resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from ordermill.errors import RetryableError, TargetRefused

if TYPE_CHECKING:
    from aiohappyeyeballs import AddrInfoType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.169.254/32", "a cloud metadata address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "an IPv4-compatible address"),  # deprecated; ::127.0.0.1 is one
    ("::ffff:0:0:0/96", "an IPv4-translated address"),
    ("100::/64", "a discard-only address"),
    ("2001:db8::/32", "a documentation address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),  # before fc00::/7, which holds it
    ("fc00::/7", "a unique-local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), reason) for cidr, reason in _REFUSED
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")


class RefusedAddress(OSError):
    """A connector target resolved to an address the guard refuses."""


# A label the system resolver reads as a number: decimal, octal (leading 0) or hex (0x).
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    return _parsed(tuple(cidrs))


@lru_cache(maxsize=1024)
def _parsed(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """(A space's allowances are parsed once, not on every request its tasks make.)"""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, NAT64 or 6to4 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def refusal(address: IPAddress, allowed: Iterable[IPNetwork]) -> str | None:
    """Why ``address`` may not be dialled, or None when it may."""
    allowed = tuple(allowed)
    if any(address.version == net.version and address in net for net in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner, allowed)
            return None if reason is None else f"{reason} (inside {address})"
    for network, reason in REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return "a reserved address"
    return None


def refusal_message(host: str, address: str, reason: str) -> str:
    shown = address if host == address else f"{host} ({address})"
    return (
        f"target {shown} is {reason}; allow it with ORDERMILL_CONNECTOR_ALLOW_NETWORKS "
        "(or the space's connectorAllowNetworks) "
        f"(for example {address}/32) if this connector is meant to be internal"
    )


def check_host(host: str, allowed: Iterable[IPNetwork]) -> str | None:
    """For the host aiohttp will dial (yarl's ``raw_host``): the refusal message, or None.

    A pure function of its arguments, so the verdicts of recent hosts are kept.

    IP literals are judged by their address, and ``localhost`` names as 127.0.0.1. A name whose
    last label is a number is a legacy IPv4 spelling (``127.1``, ``2130706433``, ``0177.0.0.1``,
    ``127.000.000.001``, ``0``) that the system resolver would turn into an address: it is
    refused whatever the allowances, since no real name ends in a number. Other names pass
    here; every address they resolve to is judged in the resolver.
    """
    return _check_host(host, tuple(allowed))


@lru_cache(maxsize=1024)
def _check_host(host: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    bare = host.strip("[]")
    if "%" in bare:
        return (
            f"target {host} is not a host ordermill dials "
            "(percent-encoded names and IPv6 zone identifiers are refused)"
        )
    name = bare.rstrip(".") if bare.count(":") == 0 else bare
    if name.lower() == "localhost" or name.lower().endswith(".localhost"):
        name = "127.0.0.1"  # RFC 6761: loopback by definition, whatever a resolver says
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
            return (
                f"target {host} is not a canonical IPv4 address; write an address as four "
                "decimal numbers without leading zeros, such as 93.184.216.34"
            )
        return None
    reason = refusal(address, allowed)
    return None if reason is None else refusal_message(host, str(address), reason)


def check_url(url: str | URL, allowed: Iterable[IPNetwork]) -> URL:
    """``url`` as aiohttp will request it, once its host passed ``check_host``.

    Raises ``TargetRefused`` (never worth a retry) for a refused or unusable target.
    """
    try:
        target = url if isinstance(url, URL) else URL(url)
    except (ValueError, UnicodeError) as exc:
        raise TargetRefused(f"{str(url)!r} is not a URL ordermill can request: {exc}") from exc
    host = target.raw_host
    if target.scheme not in ("https", "http") or not host:
        raise TargetRefused(f"{str(url)!r} is not an absolute https URL")
    if target.user is not None or target.password is not None:
        raise TargetRefused("the URL must not carry credentials")
    refused = check_host(host, allowed)
    if refused is not None:
        raise TargetRefused(refused)
    return target


def guarded_socket_factory(allowed: Iterable[IPNetwork]) -> Callable[[AddrInfoType], socket.socket]:
    """A socket factory that refuses to open a socket towards a refused address."""
    allowed = tuple(allowed)

    def open_socket(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        shown = str(sockaddr[0])
        reason = refusal(ipaddress.ip_address(shown.split("%")[0]), allowed)
        if reason is not None:
            raise RefusedAddress(refusal_message(shown, shown, reason))
        return socket.socket(family=family, type=type_, proto=proto)

    return open_socket


class GuardedResolver(ThreadedResolver):
    """Resolves a host name to its allowed addresses only, and refuses it when none is."""

    def __init__(self, allowed: Iterable[IPNetwork]) -> None:
        super().__init__()
        self.allowed = tuple(allowed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        checked, refused = [], []
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%")[0])
            reason = refusal(address, self.allowed)
            if reason is None:
                checked.append(result)
            else:
                refused.append(refusal_message(host, str(address), reason))
        if not checked:
            # Only addresses that passed the check are ever handed to the connector.
            raise RefusedAddress(refused[0] if refused else f"{host} did not resolve")
        return checked


class OutboundClient:
    """The one way ordermill requests a URL a tenant wrote: guarded, without redirects or proxies.

    One aiohttp session per set of allowances keeps connections alive per host. Failures come
    out as handler errors: ``TargetRefused`` for a refused target (never retried),
    ``RetryableError`` for connection, name resolution and TLS failures. Timeouts are the
    caller's: ``TimeoutError`` passes through.
    """

    def __init__(self, *, ca_file: Path | None = None, user_agent: str = "ordermill") -> None:
        self.ca_file = ca_file
        self.user_agent = user_agent
        self._sessions: dict[tuple[IPNetwork, ...], aiohttp.ClientSession] = {}
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(self.ca_file))
            self._ssl = context
        return self._ssl

    def _session(self, allowed: tuple[IPNetwork, ...]) -> aiohttp.ClientSession:
        session = self._sessions.get(allowed)
        if session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(allowed),
                socket_factory=guarded_socket_factory(allowed),
                ssl=self._ssl_context(),
                limit=0,
                limit_per_host=0,
                keepalive_timeout=30,
            )
            # trust_env=False: proxy variables in the environment must not reroute requests.
            # No cookie jar: a receiver's cookies are never sent back, to it or to another
            # space's connector on the same host.
            session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                headers={"User-Agent": self.user_agent},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._sessions[allowed] = session
        return session

    @contextlib.asynccontextmanager
    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        allowed: tuple[IPNetwork, ...],
        label: str = "",
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one request to ``url``; the response while the block runs."""
        prefix = f"{label}: " if label else ""
        try:
            target = check_url(url, allowed)
        except TargetRefused as exc:
            raise TargetRefused(prefix + exc.message) from exc
        session = self._session(allowed)
        try:
            async with session.request(
                method, target, headers=headers, data=data, allow_redirects=False
            ) as response:
                yield response
        except TimeoutError:
            raise
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                raise TargetRefused(prefix + str(exc.os_error)) from exc
            if isinstance(exc, aiohttp.ClientConnectorDNSError):
                raise RetryableError(
                    f"{prefix}could not resolve {target.host}: {exc.os_error}"
                ) from exc
            if isinstance(exc, aiohttp.ClientSSLError):
                raise RetryableError(f"{prefix}TLS failed: {exc}") from exc
            raise RetryableError(f"{prefix}connection failed: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise RetryableError(f"{prefix}connection failed: {exc}") from exc

    async def close(self) -> None:
        if self._sessions:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            for session in sessions:
                await session.close()
            # TLS transports finish closing on the next loop iterations; let them, so none is
            # left for the garbage collector to complain about.
            await asyncio.sleep(0.1)
