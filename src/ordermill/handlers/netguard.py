"""The outbound network guard: connectors reach only public addresses unless allowed.

The guard sits in the HTTP client's resolver, so the addresses it checks are the very addresses
that get dialled: there is no window for DNS rebinding between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

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


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
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


def check_literal(host: str, allowed: Iterable[IPNetwork]) -> str | None:
    """For a host that is an IP literal: the refusal message, or None. Names return None."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    reason = refusal(address, allowed)
    return None if reason is None else refusal_message(host, str(address), reason)


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
