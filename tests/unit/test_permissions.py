"""The permission table in the docs is the code's, and the sign-in slow-down never locks out."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordermill.errors import InvalidInput
from ordermill.people import (
    ACCOUNT_DELAY_CAP,
    ACCOUNT_FREE_FAILURES,
    ADDRESS_DELAY_CAP,
    ADDRESS_FREE_FAILURES,
    wait_after,
)
from ordermill.permissions import BUILTIN_ROLES, DESCRIPTIONS, Perm, parse_permissions
from ordermill.storage.users import normal_email

DOC = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "users.md"


def test_the_docs_list_every_permission_with_its_built_in_roles() -> None:
    text = DOC.read_text()
    for permission in Perm:
        marks = " | ".join("✓" if permission in BUILTIN_ROLES[r] else "" for r in BUILTIN_ROLES)
        row = f"| `{permission.value}` | {DESCRIPTIONS[permission]} | {marks} |"
        assert row in text, row
    assert "| permission | allows | owner | admin | operator | viewer |" in text


def test_waits_grow_after_the_free_failures_and_stay_capped() -> None:
    address = [wait_after(n, ADDRESS_FREE_FAILURES, ADDRESS_DELAY_CAP) for n in range(20)]
    account = [wait_after(n, ACCOUNT_FREE_FAILURES, ACCOUNT_DELAY_CAP) for n in range(100)]

    assert address[:ADDRESS_FREE_FAILURES] == [0.0] * ADDRESS_FREE_FAILURES
    assert address[ADDRESS_FREE_FAILURES : ADDRESS_FREE_FAILURES + 3] == [1.0, 2.0, 4.0]
    assert max(address) == ADDRESS_DELAY_CAP
    assert address == sorted(address)
    assert max(account) == ACCOUNT_DELAY_CAP <= 2.0  # an account is never held back for long


def test_a_role_holds_only_space_permissions() -> None:
    assert parse_permissions(["orders:order:view"]) == {Perm.ORDER_VIEW}
    with pytest.raises(ValueError, match="instance:space:manage"):
        parse_permissions(["instance:space:manage"])
    with pytest.raises(ValueError, match="orders:order:fly"):
        parse_permissions(["orders:order:fly"])


@pytest.mark.parametrize(
    ("given", "stored"),
    [("Ann@Example.COM", "ann@example.com"), ("  bo@x.example ", "bo@x.example")],
)
def test_email_addresses_compare_without_case(given: str, stored: str) -> None:
    assert normal_email(given) == stored


@pytest.mark.parametrize("bad", ["", "ann", "ann@", "@x.com", "ann@localhost", "a b@x.com"])
def test_what_is_not_an_email_address_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normal_email(bad)
