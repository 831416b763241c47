"""Requests anyone can send without a key, each with the clean answer it must get.

Non-ASCII credentials go on the wire as raw bytes, as a hostile client would send them.
"""

from __future__ import annotations

HUGE_NUMBER = "9" * 5000
# (method, path, headers, form body, expected status, whether the answer is problem+json)
HOSTILE: list[tuple[str, str, dict[str, bytes], dict[str, str] | None, int, bool]] = [
    ("GET", "/api/orders", {"Authorization": "Bearer é".encode()}, None, 401, True),
    ("POST", "/api/spaces", {"Authorization": "Bearer é".encode()}, None, 401, True),
    ("GET", "/api/orders", {"Authorization": "Bearer \xff\xfe".encode("latin-1")}, None, 401, True),
    (
        "GET",
        "/api/assets/1/download?expires=9999999999&signature=%C3%A9",
        {},
        None,
        403,
        True,
    ),
    (
        "GET",
        "/confirmations/dlv_x/answer/confirm/0?expires=9999999999&signature=%C3%A9",
        {},
        None,
        403,
        False,
    ),
    (
        "GET",
        f"/confirmations/dlv_x/answer/confirm/0?expires={HUGE_NUMBER}&signature=abc",
        {},
        None,
        403,
        False,
    ),
    ("GET", "/flows", {"Cookie": "ordermill_session=abc.é".encode()}, None, 303, False),
    ("POST", "/flows", {"Cookie": "ordermill_session=abc.é".encode()}, None, 303, False),
    (
        "POST",
        "/signin",
        {"Cookie": b"ordermill_signin=abcdefgh"},
        {"csrf": "é", "api_key": "om_x"},
        403,
        False,
    ),
]
