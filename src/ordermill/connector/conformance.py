"""``ordermill connector check``: does an endpoint take ordermill's requests, and only those?

We send a correctly signed sample order, the same delivery again, and three requests that a
receiver must refuse (unsigned, forged signature, an hour-old timestamp), then judge each
answer. With a local sink we also wait for the connector's feedback on the sample order.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp

from ordermill import __version__
from ordermill.connector.sample import encode, new_delivery_id, sample_request
from ordermill.connector.signature import sign_headers
from ordermill.connector.sink import FeedbackSink

ANSWER_SHOWN = 160
_REFUSED_GENUINE = "ordermill's own request was refused (same secret? clocks in sync?)"
_NO_DEDUP = (
    "ordermill resends a delivery whose answer it missed; deduplicate on webhook-id "
    "and answer 2xx again"
)
_UNSIGNED = "accepted a request without a signature"
_FORGED = "accepted a request with a forged signature"
_STALE = "no replay protection: accepted a signed request from an hour ago"
_UNKNOWN = (
    "refused a request with members it does not know (event, context.trigger, "
    "context.amendment); ignore unknown members, ordermill adds them"
)


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password): answered as ordermill needs
    WARN = "warn"  # works, but something is worth fixing; does not fail the check
    FAIL = "fail"  # ordermill cannot use this endpoint safely as it is


@dataclass(frozen=True)
class CheckResult:
    """One line of the report."""

    name: str
    expected: str
    got: str
    verdict: Verdict
    note: str = ""


@dataclass(frozen=True)
class Report:
    url: str
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """Whether every required check passed (warnings do not count against it)."""
        return all(result.verdict is not Verdict.FAIL for result in self.results)


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no HTTP answer
    line: str  # the status line, or what went wrong
    detail: str = ""  # the start of the answer's body

    @property
    def got(self) -> str:
        if self.status is not None and 300 <= self.status < 400:
            return f"{self.line} (redirects are not followed)"
        return self.line

    def explain(self, why: str) -> str:
        return f"{why}; it answered: {self.detail}" if self.detail else why


@dataclass(frozen=True)
class _Expect:
    """What a check expects: acceptance (2xx) or refusal (4xx), and what a miss means."""

    accept: bool
    required: bool
    why: str  # the note when the answer is not the expected one

    @property
    def expected(self) -> str:
        return "2xx" if self.accept else "4xx"

    def judge(self, answer: _Answer) -> tuple[Verdict, str]:
        miss = Verdict.FAIL if self.required and self.accept else Verdict.WARN
        if answer.status is None:
            return miss, "no HTTP answer: is it running, and is this the right URL?"
        status = answer.status
        miss = Verdict.FAIL if self.required else Verdict.WARN
        if self.accept:
            return (Verdict.PASS, "") if 200 <= status < 300 else (miss, answer.explain(self.why))
        if 400 <= status < 500:
            return Verdict.PASS, ""
        if 200 <= status < 300:
            return miss, self.why
        if status >= 500:
            return Verdict.WARN, "refused, but a 5xx says 'try again'; answer 401 or 400"
        return Verdict.WARN, "not a clear refusal; answer 401 or 400"


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], seconds: float
) -> _Answer:
    try:
        async with (
            asyncio.timeout(seconds),
            session.post(url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            raw = await response.content.read(ANSWER_SHOWN)
    except TimeoutError:
        return _Answer(None, f"no answer within {seconds:g} s")
    except aiohttp.ClientSSLError as exc:
        return _Answer(None, f"TLS failed: {exc}")
    except (aiohttp.ClientError, OSError) as exc:
        return _Answer(None, f"connection failed: {exc}")
    line = f"{response.status} {response.reason or ''}".strip()
    return _Answer(response.status, line, " ".join(raw.decode(errors="replace").split()))


def _forge(headers: dict[str, str]) -> dict[str, str]:
    # A well-formed signature of the right length that is wrong in one byte.
    digest = bytearray(base64.b64decode(headers["webhook-signature"].split(",", 1)[1]))
    digest[0] ^= 0x01
    return {**headers, "webhook-signature": "v1," + base64.b64encode(bytes(digest)).decode()}


async def run_checks(
    url: str,
    secret: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    seconds: float = 10.0,
    listen: bool = False,
) -> Report:
    """Send the checks to ``url``, signing with ``secret``; return the judged report.

    ``seconds`` bounds each request, and the wait for feedback when ``listen`` is true.
    """
    sink = await FeedbackSink(secret).start() if listen else None
    try:
        results = await _send_all(url, secret, ssl_context, seconds, sink)
        if sink is not None:
            results.append(await _feedback_result(sink, seconds))
    finally:
        if sink is not None:
            await sink.close()
    return Report(url, tuple(results))


async def _send_all(
    url: str,
    secret: str,
    ssl_context: ssl.SSLContext | None,
    seconds: float,
    sink: FeedbackSink | None,
) -> list[CheckResult]:
    if sink is not None:
        update_url, asset_base = sink.update_url, sink.asset_base
    else:
        update_url = f"https://example.invalid/api/feedback/{secrets.token_urlsafe(24)}"
        asset_base = "https://example.invalid/files"
    order_id = f"CHECK-{secrets.token_hex(3).upper()}"
    base = {"Content-Type": "application/json", "User-Agent": f"ordermill/{__version__} (check)"}

    def request(
        *, at: datetime | None = None, extended: bool = False
    ) -> tuple[bytes, dict[str, str]]:
        delivery_id = new_delivery_id()
        tpid = f"{order_id}-X" if extended else order_id
        document = sample_request(
            update_url, asset_base, delivery_id=delivery_id, third_party_order_id=tpid
        )
        if extended:
            document = with_unknown_members(document)
        body = encode(document)
        return body, {
            **base,
            "ordermill-attempt": "1",
            **sign_headers(body, delivery_id, secret, now=at),
        }

    genuine, genuine_headers = request()
    unsigned, unsigned_headers = request()
    for name in ("webhook-timestamp", "webhook-signature"):
        del unsigned_headers[name]
    forged, forged_headers = request()
    stale, stale_headers = request(at=datetime.now(UTC) - timedelta(hours=1))
    extended, extended_headers = request(extended=True)
    redelivery_headers = {
        **genuine_headers,
        "ordermill-attempt": "2",
        **sign_headers(genuine, genuine_headers["webhook-id"], secret),
    }
    plan: list[tuple[str, bytes, dict[str, str], _Expect]] = [
        ("signed order", genuine, genuine_headers, _Expect(True, True, _REFUSED_GENUINE)),
        ("same delivery again", genuine, redelivery_headers, _Expect(True, False, _NO_DEDUP)),
        ("no signature", unsigned, unsigned_headers, _Expect(False, True, _UNSIGNED)),
        ("forged signature", forged, _forge(forged_headers), _Expect(False, True, _FORGED)),
        ("timestamp 1 h old", stale, stale_headers, _Expect(False, False, _STALE)),
        ("unknown members", extended, extended_headers, _Expect(True, True, _UNKNOWN)),
    ]
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True)
    results: list[CheckResult] = []
    # trust_env=False: proxy variables must not reroute the check to somewhere else.
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        for name, body, headers, expect in plan:
            answer = await _post(session, url, body, headers, seconds)
            verdict, note = expect.judge(answer)
            results.append(CheckResult(name, expect.expected, answer.got, verdict, note))
    return results


def with_unknown_members(document: dict[str, Any]) -> dict[str, Any]:
    """The sample request with what later deliveries add: a subscription's ``event`` beside
    ``order``, a failure stage's ``context.trigger``, an amendment's ``context.amendment``, and
    one member no version of ordermill sends yet."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    context = {
        **document["context"],
        "trigger": {"event": "order.failed", "taskKey": "task-1", "error": {"statusCode": 400}},
        "amendment": {"revision": 2, "changed": ["/data/giftNote"]},
        "checkFutureMember": {"ignored": True},
    }
    event = {"type": "order.status", "at": now, "from": "IN_PROGRESS", "to": "FAILURE"}
    # As in a subscription's event, there is no feedback to give.
    order = {**document["order"], "updateUrl": None}
    return {**document, "order": order, "event": event, "context": context}


async def _feedback_result(sink: FeedbackSink, seconds: float) -> CheckResult:
    expected = "POST to updateUrl"
    feedback = await sink.wait(seconds)
    if feedback is None:
        note = f"none within {seconds:g} s (fine for a flow with sendsFeedback: false)"
        return CheckResult("feedback", expected, "nothing", Verdict.WARN, note)
    got = f"{feedback.status or '?'}, signature {feedback.signature}"
    if feedback.problem is not None:
        return CheckResult("feedback", expected, got, Verdict.FAIL, feedback.problem)
    if feedback.signature.startswith("invalid"):
        return CheckResult("feedback", expected, got, Verdict.FAIL, "sign it with the secret")
    notes = [f"{len(sink.downloads)} sample file(s) downloaded"]
    if feedback.signature != "valid":
        notes.append("unsigned; pass secret= to send_feedback to sign it")
    return CheckResult("feedback", expected, got, Verdict.PASS, "; ".join(notes))
