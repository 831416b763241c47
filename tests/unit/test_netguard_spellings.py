"""No spelling of an internal address gets past the outbound guard.

Hypothesis writes loopback, private, link-local and metadata addresses in the ways a URL parser,
IDNA or the system resolver may turn back into those addresses: Unicode digits and full stops,
circled and full-width characters, percent-encoding, mixed case, trailing dots, IPv6 forms
(IPv4-mapped, -compatible, NAT64, 6to4, zone identifiers) and legacy numeric IPv4 forms. Each
request must fail with ``TargetRefused`` while a real listener on 127.0.0.1 (whose port every URL
names) sees no connection at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordermill.errors import TargetRefused
from ordermill.handlers.netguard import (
    OutboundClient,
    RefusedAddress,
    check_host,
    guarded_socket_factory,
    parse_networks,
)

EXAMPLES = 300
REFUSED_V4 = [
    "127.0.0.1",
    "127.0.0.2",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 (an address to refuse, not bind)
]
REFUSED_V6 = ["::1", "fd00:ec2::254", "fe80::1", "fd12:3456::1", "fc00::1", "::"]
LOOPBACK_NAMES = ["localhost", "api.localhost", "metadata.google.internal.localhost"]

# Characters that IDNA (UTS 46) maps onto an ASCII digit, and onto a full stop.
UNICODE_DIGITS = {
    str(d): [chr(0xFF10 + d), chr(0x1D7CE + d), chr(0x1D7D8 + d), chr(0x1D7EC + d)]
    for d in range(10)
}
for digit in range(1, 10):
    UNICODE_DIGITS[str(digit)].append(chr(0x2460 + digit - 1))  # ① … ⑨
UNICODE_DIGITS["0"].append("⓪")
DOTS = [".", "。", "．", "｡"]


class Listener:
    """A TCP listener on 127.0.0.1 that counts every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture(scope="module")
def client(runner: asyncio.Runner) -> Iterator[OutboundClient]:
    outbound = OutboundClient()
    yield outbound
    runner.run(outbound.close())


@st.composite
def spelled_v4(draw: st.DrawFn) -> str:
    """An IPv4 address in a disguise that still denotes it."""
    address = ipaddress.IPv4Address(draw(st.sampled_from(REFUSED_V4)))
    octets = [int(part) for part in str(address).split(".")]
    form = draw(
        st.sampled_from(
            ["unicode", "decimal", "hex", "octal", "short", "padded", "percent", "mapped"]
        )
    )
    if form == "unicode":
        text = ""
        for char in str(address):
            if char == ".":
                text += draw(st.sampled_from(DOTS))
            else:
                text += draw(st.sampled_from([char, *UNICODE_DIGITS[char]]))
        return text
    if form == "decimal":
        return str(int(address))
    if form == "hex":
        whole = draw(st.booleans())
        if whole:
            return draw(st.sampled_from(["0x", "0X"])) + format(int(address), "x")
        return ".".join(draw(st.sampled_from(["0x", "0X"])) + format(o, "X") for o in octets)
    if form == "octal":
        return ".".join("0" + format(o, "o") for o in octets)
    if form == "short":  # a.b.c with a 16-bit last part, or a.b with a 24-bit one
        if draw(st.booleans()):
            return f"{octets[0]}.{octets[1]}.{octets[2] * 256 + octets[3]}"
        return f"{octets[0]}.{(octets[1] << 16) + (octets[2] << 8) + octets[3]}"
    if form == "padded":
        return ".".join(format(o, "03d") for o in octets)
    if form == "percent":
        return "".join(f"%{ord(c):02X}" if draw(st.booleans()) else c for c in str(address))
    return draw(
        st.sampled_from(
            [
                f"[::ffff:{address}]",
                f"[::FFFF:{int(address) >> 16:x}:{int(address) & 0xFFFF:x}]",
                f"[0:0:0:0:0:ffff:{address}]",
                f"[::{address}]",
                f"[64:ff9b::{address}]",
                f"[2002:{int(address) >> 16:x}:{int(address) & 0xFFFF:x}::]",
            ]
        )
    )


@st.composite
def spelled_v6(draw: st.DrawFn) -> str:
    address = ipaddress.IPv6Address(draw(st.sampled_from(REFUSED_V6)))
    form = draw(st.sampled_from(["short", "exploded", "upper", "zone"]))
    if form == "short":
        return f"[{address.compressed}]"
    if form == "exploded":
        return f"[{address.exploded}]"
    if form == "upper":
        return f"[{address.exploded.upper()}]"
    return f"[{address.compressed}%25eth0]"


@st.composite
def spelled_name(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(LOOPBACK_NAMES))
    return "".join(
        draw(st.sampled_from([c, c.upper(), chr(ord(c) + 0xFEE0)])) if c.isalpha() else c
        for c in name
    )


hosts = st.one_of(spelled_v4(), spelled_v6(), spelled_name()).flatmap(
    lambda host: st.sampled_from([host, host + "."]) if not host.endswith("]") else st.just(host)
)


def is_legacy_ipv4(host: str) -> bool:
    """An ASCII numeric spelling other than the canonical a.b.c.d."""
    if not host.isascii() or "%" in host or "[" in host:
        return False
    parts = host.split(".")
    return not (len(parts) == 4 and all(p.isdigit() and str(int(p)) == p for p in parts))


async def request(client: OutboundClient, url: str, allowed: str = "") -> BaseException | None:
    try:
        async with (
            asyncio.timeout(5),
            client.request("GET", url, allowed=parse_networks([allowed] if allowed else [])),
        ):
            return None
    except Exception as exc:
        return exc


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(host=hosts, scheme=st.sampled_from(["https", "http"]))
def test_every_spelling_of_an_internal_address_is_refused_without_a_connection(
    runner: asyncio.Runner,
    client: OutboundClient,
    listener: Listener,
    host: str,
    scheme: str,
) -> None:
    url = f"{scheme}://{host}:{listener.port}/internal"

    outcome = runner.run(request(client, url))

    assert isinstance(outcome, TargetRefused), (url, outcome)
    assert listener.connections == 0, url


@settings(
    max_examples=EXAMPLES // 3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(host=spelled_v4().filter(is_legacy_ipv4))
def test_legacy_ipv4_spellings_are_refused_even_where_the_address_is_allowed(
    runner: asyncio.Runner, client: OutboundClient, listener: Listener, host: str
) -> None:
    url = f"https://{host}:{listener.port}/internal"

    outcome = runner.run(request(client, url, allowed="0.0.0.0/0"))

    assert isinstance(outcome, TargetRefused), (url, outcome)
    assert "is not a canonical IPv4 address" in str(outcome)
    assert listener.connections == 0, url


@pytest.mark.parametrize(
    "host",
    ["127.1", "2130706433", "0177.0.0.1", "127.000.000.001", "0", "0x7f.0.0.1", "1.2.3.04"],
)
def test_the_legacy_forms_named_in_the_docs_are_refused_whatever_is_allowed(host: str) -> None:
    message = check_host(host, parse_networks(["0.0.0.0/0", "::/0"]))

    assert message is not None
    assert message.startswith(f"target {host} is not a canonical IPv4 address")


@pytest.mark.parametrize(
    "host", ["93.184.216.34", "erp.example.com", "ex4mple.com", "2606:4700::1"]
)
def test_public_addresses_and_ordinary_names_pass_the_host_check(host: str) -> None:
    assert check_host(host, ()) is None


async def test_the_socket_factory_refuses_an_address_the_earlier_checks_never_saw(
    listener: Listener,
) -> None:
    """The last line: even a request that skips the URL check cannot open a socket to loopback."""
    open_socket = guarded_socket_factory(())
    with pytest.raises(RefusedAddress, match=r"target 127\.0\.0\.1 is a loopback address"):
        open_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", listener.port)))

    connector = aiohttp.TCPConnector(socket_factory=open_socket)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(f"http://127.0.0.1:{listener.port}/")
    assert isinstance(caught.value.os_error, RefusedAddress)
    assert listener.connections == 0
