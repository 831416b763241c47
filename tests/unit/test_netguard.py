"""The network guard refuses private, loopback, metadata and reserved targets, in every disguise."""

from __future__ import annotations

import ipaddress

import pytest

from ordermill.handlers.netguard import (
    GuardedResolver,
    RefusedAddress,
    check_host,
    parse_networks,
    refusal,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.9", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.10.10", "a link-local address"),
        ("100.64.1.1", "a carrier-grade NAT address"),
        ("0.0.0.0", "a 'this network' address"),  # noqa: S104 (an address to refuse, not bind)
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("198.18.0.1", "a benchmarking address"),
        ("::1", "a loopback address"),
        ("fd00::1", "a unique-local (private) address"),
        ("fe80::1", "a link-local address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("::ffff:127.0.0.1", "a loopback address (inside ::ffff:7f00:1)"),
        ("64:ff9b::a01:203", "a private address (inside 64:ff9b::a01:203)"),
        ("2002:7f00:1::", "a loopback address (inside 2002:7f00:1::)"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) is None


def test_an_allowed_network_lets_its_addresses_through_and_no_others() -> None:
    allowed = parse_networks(["10.20.0.0/16", "127.0.0.1/32"])

    assert refusal(ipaddress.ip_address("10.20.3.4"), allowed) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert refusal(ipaddress.ip_address("10.21.0.1"), allowed) == "a private address"
    assert refusal(ipaddress.ip_address("::ffff:10.20.3.4"), allowed) is None


def test_an_ip_literal_target_gets_a_message_that_says_how_to_allow_it() -> None:
    message = check_host("10.1.2.3", ())

    assert message is not None
    assert message.startswith("target 10.1.2.3 is a private address; allow it with")
    assert "ORDERMILL_CONNECTOR_ALLOW_NETWORKS" in message
    assert check_host("erp.example.com", ()) is None
    assert check_host("[::1]", ()) is not None


async def test_the_resolver_refuses_a_name_that_resolves_only_to_loopback() -> None:
    resolver = GuardedResolver(())

    with pytest.raises(RefusedAddress, match=r"localhost \(.*\) is a loopback address"):
        await resolver.resolve("localhost", 443)


async def test_the_resolver_hands_over_only_the_addresses_it_allowed() -> None:
    resolver = GuardedResolver(parse_networks(["127.0.0.1/32"]))

    results = await resolver.resolve("localhost", 443)

    assert {result["host"] for result in results} == {"127.0.0.1"}
