"""A randomized chaos soak on PostgreSQL: every order still ends, and ends as its script says.

`ordermill api` and 2–4 workers run a seeded mix of flows (fan-out, `join: all` and `any`, timers,
feedback early, late, twice and never, confirmations, retries, attempt timeouts, cancellations)
while one worker is SIGKILLed every few seconds and restarted, and PostgreSQL restarts once. Then
the chaos stops, the run drains, and the invariant checker reads the database.

`ORDERMILL_SOAK_SECONDS` (default 100) is how long orders arrive under chaos; `make soak` runs a
long one. A failure prints its seed: `ORDERMILL_SOAK_SEED=<seed>` replays the same mix and
schedule (timing on a real machine still varies).
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy

from ordermill.storage import tables as t
from tests.acceptance.cluster import RECONCILED, Cluster, judge, postgres_cluster, wait_settled
from tests.acceptance.conftest import ADMIN_KEY
from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow, wait_task
from tests.support.invariants import sync_engine
from tests.support.postgres import PostgresServer
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.soak]

SOAK_SECONDS = float(os.environ.get("ORDERMILL_SOAK_SECONDS", "100"))
DRAIN_SECONDS = 60.0
ORDERS_PER_SECOND = 2.5
KILL_EVERY = (2.0, 6.0)  # seconds between two SIGKILLs, drawn from this range
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
RETRY = {"maxAttempts": 12, "initialIntervalMs": 100, "maxIntervalMs": 1000}


@dataclass(frozen=True)
class Kind:
    """One scripted way for an order to go, and the status it must end in."""

    flow: str
    name: str
    expected: str
    weight: int


KINDS = (
    Kind("race", "ok", "SUCCESS", 4),
    Kind("race", "refused", "FAILURE", 1),  # d answers 400
    Kind("feedback", "ok", "SUCCESS", 3),
    Kind("feedback", "early", "SUCCESS", 1),  # success posted before the HTTP answer
    Kind("feedback", "twice", "SUCCESS", 1),  # the same success posted twice
    Kind("feedback", "failure", "FAILURE", 1),
    Kind("confirm", "ok", "SUCCESS", 2),
    Kind("confirm", "late", "SUCCESS", 1),  # feedback after the feedback wait timed out
    Kind("confirm", "never", "UNHEALTHY", 1),  # no feedback: timed out, waits for an operator
    Kind("confirm", "rejected", "FAILURE", 1),  # the test rejects the confirmation
    Kind("confirm", "cancelled", "CANCELLED", 1),  # the test cancels while it waits
)


def flows(base: str) -> list[dict[str, Any]]:
    def rest(flow: str, key: str, next_: list[str], **extra: Any) -> dict[str, Any]:
        return rest_task(f"{base}/{flow}/{key}", key, next_, retry=RETRY, **extra)

    feedback = {"payload": {"sendsFeedback": True}}
    race = [
        rest("race", "a", ["b", "c"]),
        rest("race", "b", ["d"]),
        wait_task("c", 500, ["d"]),
        rest("race", "d", []),
    ]
    fan = [
        rest("feedback", "ack", ["fast", "timer"], timeoutDuration=20_000, **feedback),
        rest("feedback", "fast", ["either", "both"]),
        wait_task("timer", 300, ["either", "both"]),
        rest("feedback", "either", [], join="any"),
        rest("feedback", "both", []),
    ]
    check = {
        "key": "check",
        "handlerKey": "manual-confirmation",
        "payload": {"title": "Make {{ order.thirdPartyOrderId }}?"},
        "timeoutDuration": 600_000,
        "next": ["notify"],
    }
    late = {"payload": {"sendsFeedback": True, "feedbackTimeoutDuration": 1000}}
    make = [
        rest("confirm", "slowpoke", [], timeoutDuration=400),
        rest("confirm", "late", [], **late),
    ]
    return [
        staged_flow(
            "race",
            "Join of a connector and a timer",
            stage_doc("fan", ["a"], race),
            stage_doc("after", ["e"], [rest("race", "e", [])]),
        ),
        staged_flow(
            "feedback",
            "Feedback, then joins all and any",
            stage_doc("intake", ["ack"], fan),
            stage_doc("ship", ["retry"], [rest("feedback", "retry", [])]),
        ),
        staged_flow(
            "confirm",
            "Confirmation, then timeouts",
            stage_doc("check", ["check"], [check, rest("confirm", "notify", [])]),
            stage_doc("make", ["slowpoke", "late"], make),
        ),
    ]


class Actions:
    """Calls to the API at a due time, on one thread; each is retried while the API is away."""

    def __init__(self, base_url: str, until: Callable[[], float]) -> None:
        self.http = httpx2.Client(base_url=base_url, timeout=10, headers=ADMIN)
        self.until = until
        self.queue: list[tuple[float, int, str, dict[str, Any] | None]] = []
        self.counter = itertools.count()
        self.cond = threading.Condition()
        self.stopped = False
        self.answers: Counter[tuple[str, int | None]] = Counter()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="soak-actions", daemon=True)
        self.thread.start()

    def post_later(self, delay: float, url: str, body: dict[str, Any] | None = None) -> None:
        with self.cond:
            heapq.heappush(self.queue, (time.monotonic() + delay, next(self.counter), url, body))
            self.cond.notify()

    def busy(self) -> bool:
        with self.cond:
            return bool(self.queue)

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()
        self.thread.join(30)
        self.http.close()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a thread has nowhere to raise; the test reads `errors`
            self.errors.append(exc)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.stopped and (not self.queue or self.queue[0][0] > time.monotonic()):
                    self.cond.wait(self.queue[0][0] - time.monotonic() if self.queue else None)
                if self.stopped:
                    return
                _, _, url, body = heapq.heappop(self.queue)
            status = self._post(url, body)
            self.answers["cancel" if url.endswith("/cancel") else "feedback", status] += 1
            if (status is None or status >= 500) and time.monotonic() < self.until():
                self.post_later(0.5, url, body)

    def _post(self, url: str, body: dict[str, Any] | None) -> int | None:
        try:
            return self.http.post(url, json=body).status_code
        except httpx2.TransportError:
            return None


class Soak:
    """The scripted receiver, the order intake and the confirmer of one seeded run."""

    def __init__(self, seed: int, receiver: HttpsReceiver) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.receiver = receiver
        self.plans: dict[str, Kind] = {}  # thirdPartyOrderId → its script
        self.actions: Actions | None = None
        self.confirmed: Counter[tuple[str, int]] = Counter()
        self.started = 0.0
        self.errors: list[BaseException] = []

    def kind_of(self, request: ReceivedRequest) -> tuple[Kind, random.Random, dict[str, Any]]:
        order = request.json()["order"]
        tpid = order["thirdPartyOrderId"]
        attempt = request.headers.get("ordermill-attempt")
        return self.plans[tpid], random.Random(f"{self.seed}:{tpid}:{attempt}"), order

    def script_receiver(self) -> None:
        def now(request: ReceivedRequest) -> Reply:
            return Reply(status=201, body={"ok": True})

        def slow(request: ReceivedRequest) -> Reply:
            return Reply(status=201, body={"ok": True}, delay=0.5)

        def refused_or_ok(request: ReceivedRequest) -> Reply:
            kind, _, _ = self.kind_of(request)
            if kind.name == "refused":
                problem = {"title": "Refused", "status": 400, "detail": "the soak refuses it"}
                return Reply(status=400, body=problem)
            return now(request)

        def feedback(status: str, *delays: float) -> Callable[[ReceivedRequest], None]:
            def send(request: ReceivedRequest) -> None:
                url = request.json()["order"]["updateUrl"]
                assert self.actions is not None
                for delay in delays:
                    self.actions.post_later(delay, url, {"status": status, "message": "soak"})

            return send

        def ack(request: ReceivedRequest) -> Reply:
            kind, rng, order = self.kind_of(request)
            if kind.name == "early":
                return Reply(status=201, body={"ok": True}, before=early(order["updateUrl"]))
            status = "failure" if kind.name == "failure" else "success"
            delays = (rng.uniform(0.05, 1.0),)
            if kind.name == "twice":
                delays += (delays[0] + 0.3,)
            feedback(status, *delays)(request)
            return Reply(status=202, body={"accepted": True})

        def early(url: str) -> Callable[[ReceivedRequest], None]:
            def post_first(request: ReceivedRequest) -> None:
                try:
                    answer = httpx2.post(url, json={"status": "success"}, timeout=10)
                    failed = answer.status_code >= 500
                except httpx2.TransportError:
                    failed = True
                if failed:  # the API is away: post it later instead
                    feedback("success", 0.5)(request)

            return post_first

        def retry(request: ReceivedRequest) -> Reply:
            attempt = int(request.headers.get("ordermill-attempt", "1"))
            return Reply(status=503, body="try again") if attempt <= 2 else now(request)

        def slowpoke(request: ReceivedRequest) -> Reply:
            first = request.headers.get("ordermill-attempt") == "1"
            return Reply(status=201, body={"ok": True}, delay=0.8 if first else 0.0)

        def late(request: ReceivedRequest) -> Reply:
            kind, rng, _ = self.kind_of(request)
            if kind.name == "late":
                feedback("success", 2.5)(request)
            elif kind.name != "never":
                feedback("success", rng.uniform(0.05, 0.5))(request)
            return Reply(status=202, body={"accepted": True})

        responders: dict[str, Callable[[ReceivedRequest], Reply]] = {
            "/race/a": now,
            "/race/b": slow,
            "/race/d": refused_or_ok,
            "/race/e": now,
            "/feedback/ack": ack,
            "/feedback/fast": now,
            "/feedback/either": now,
            "/feedback/both": now,
            "/feedback/retry": retry,
            "/confirm/notify": now,
            "/confirm/slowpoke": slowpoke,
            "/confirm/late": late,
        }
        for path, responder in responders.items():
            self.receiver.respond(path, responder)

    def post_orders(self, http: httpx2.Client, until: float) -> None:
        """Orders at `ORDERS_PER_SECOND` until `until`; each retried while the API is away."""
        try:
            self._post_orders(http, until)
        except BaseException as exc:  # a thread has nowhere to raise; the test reads `errors`
            self.errors.append(exc)

    def _post_orders(self, http: httpx2.Client, until: float) -> None:
        weights = [kind.weight for kind in KINDS]
        for n in itertools.count():
            due = n / ORDERS_PER_SECOND
            if self.started + due >= until:
                return
            time.sleep(max(0.0, self.started + due - time.monotonic()))
            kind = self.rng.choices(KINDS, weights)[0]
            tpid = f"SOAK-{self.seed}-{n}-{kind.name}"
            self.plans[tpid] = kind
            order_id = self._create(http, order_doc(tpid, flow_key=kind.flow))
            if order_id is not None and kind.name == "cancelled":
                assert self.actions is not None
                cancel = f"/api/orders/{order_id}/cancel"
                self.actions.post_later(self.rng.uniform(1.0, 3.0), cancel)

    def _create(self, http: httpx2.Client, body: dict[str, Any]) -> str | None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = http.post("/api/orders", json=body)
            except httpx2.TransportError:
                response = None
            if response is not None and response.status_code in (200, 201):
                order_id: str = response.json()["id"]
                return order_id
            if response is not None and response.status_code < 500:
                raise AssertionError(f"order refused: {response.status_code} {response.text}")
            time.sleep(0.3)
        return None

    def confirm_pending(self, http: httpx2.Client) -> None:
        """Answer every open confirmation as its order's script says (cancelled ones: never)."""
        try:
            response = http.get("/api/confirmations", params={"spaceKey": "acme"})
        except httpx2.TransportError:
            return
        if response.status_code != 200:
            return
        for item in response.json()["items"]:
            kind = self.plans[item["thirdPartyOrderId"]]
            if kind.name == "cancelled":
                continue
            action = "reject" if kind.name == "rejected" else "confirm"
            try:
                answer = http.post(f"/api/confirmations/{item['id']}/{action}", json={})
            except httpx2.TransportError:
                continue
            self.confirmed[action, answer.status_code] += 1


def drive(
    soak: Soak, cluster: Cluster, server: PostgresServer, rng: random.Random
) -> dict[str, Any]:
    """Orders, confirmations, SIGKILLs and one PostgreSQL restart for SOAK_SECONDS."""
    soak.started = time.monotonic()
    until = soak.started + SOAK_SECONDS
    http = httpx2.Client(base_url=cluster.base_url, timeout=10, headers=ADMIN)
    intake = threading.Thread(target=soak.post_orders, args=(http, until), daemon=True)
    intake.start()
    kills, restart_took = 0, 0.0
    next_kill = time.monotonic() + rng.uniform(*KILL_EVERY)
    restart_at = soak.started + SOAK_SECONDS * rng.uniform(0.3, 0.6)
    confirm_http = httpx2.Client(base_url=cluster.base_url, timeout=10, headers=ADMIN)
    try:
        while time.monotonic() < until:
            soak.confirm_pending(confirm_http)
            if time.monotonic() >= next_kill:
                victim = rng.randrange(len(cluster.workers))
                cluster.workers[victim].kill()
                time.sleep(rng.uniform(0.0, 1.0))
                cluster.start_worker(victim)
                kills += 1
                next_kill = time.monotonic() + rng.uniform(*KILL_EVERY)
            if restart_at and time.monotonic() >= restart_at:
                began = time.monotonic()
                server.restart()
                restart_took, restart_at = time.monotonic() - began, 0.0
            time.sleep(0.3)
        intake.join(60)
    finally:
        http.close()
        confirm_http.close()
    return {"kills": kills, "postgresRestartSeconds": round(restart_took, 2)}


def statuses(database_url: str) -> dict[str, tuple[str, str]]:
    """Each order's thirdPartyOrderId and status."""
    engine = sync_engine(database_url)
    query = sqlalchemy.select(t.orders.c.id, t.orders.c.third_party_order_id, t.orders.c.status)
    try:
        with engine.connect() as conn:
            return {row.id: (row.third_party_order_id, row.status) for row in conn.execute(query)}
    finally:
        engine.dispose()


def test_chaos_soak_on_postgres(
    postgres_server: PostgresServer,
    postgres_url: str,
    https_receiver: HttpsReceiver,
    tmp_path: Path,
) -> None:
    """Every order ends as scripted, no invariant breaks, and nothing needed reconciling."""
    if not postgres_server.managed:
        pytest.skip("the server comes from ORDERMILL_TEST_POSTGRES_URL; it is not ours to restart")
    seed = int(os.environ.get("ORDERMILL_SOAK_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    workers = rng.randint(2, 4)
    replay = f"seed {seed} (replay: ORDERMILL_SOAK_SEED={seed})"
    print(replay)  # pytest shows it with any failure, an error half-way included
    soak = Soak(seed, https_receiver)
    soak.script_receiver()
    began = time.monotonic()
    with postgres_cluster(
        postgres_url, https_receiver.ca_pem_path, tmp_path, workers=workers
    ) as cluster:
        with httpx2.Client(base_url=cluster.base_url, timeout=10, headers=ADMIN) as http:
            assert http.post("/api/spaces", json={"key": "acme"}).status_code == 201
            for flow in flows(https_receiver.base_url):
                response = http.post("/api/flows", json=flow)
                assert response.status_code == 201, response.text
        chaos_over = [float("inf")]
        soak.actions = Actions(cluster.base_url, until=lambda: chaos_over[0] + DRAIN_SECONDS)
        try:
            figures = drive(soak, cluster, postgres_server, rng)
            chaos_over[0] = time.monotonic()
            with httpx2.Client(base_url=cluster.base_url, timeout=10, headers=ADMIN) as http:
                settled = wait_settled(
                    postgres_url,
                    timeout=DRAIN_SECONDS,
                    quiet=5.0,
                    busy=lambda: soak.actions is not None and soak.actions.busy(),
                    between=lambda: soak.confirm_pending(http),
                )
            drained = time.monotonic() - chaos_over[0]
        finally:
            soak.actions.stop()
        verdict = judge(cluster, https_receiver)

    final = statuses(postgres_url)
    wrong = {
        order_id: f"{tpid} ended {status}"
        for order_id, (tpid, status) in final.items()
        if soak.plans[tpid].expected != status
    }
    summary = (
        f"{replay}: {workers} workers, {len(final)} orders in {SOAK_SECONDS:g} s, "
        f"{figures['kills']} SIGKILLs, PostgreSQL restarted in "
        f"{figures['postgresRestartSeconds']} s, drained in {drained:.1f} s, "
        f"{len(https_receiver.requests)} deliveries, {time.monotonic() - began:.0f} s in all; "
        f"statuses {dict(Counter(status for _, status in final.values()))}; "
        f"{len(wrong)} ended off-script; {len(verdict.violations)} violations; "
        f"{RECONCILED} = {verdict.reconciled} (not exported by {verdict.unexported or 'none'}); "
        f"confirmations {dict(soak.confirmed)}; "
        f"actions {dict(soak.actions.answers)}"
    )
    print(summary)
    assert not soak.errors + soak.actions.errors, f"{summary}\n{soak.errors + soak.actions.errors}"
    verdict.assert_clean(summary)
    off_script = "\n".join(f"  {order_id}: {what}" for order_id, what in list(wrong.items())[:30])
    assert not wrong, f"{summary}\noff-script:\n{off_script}"
    assert settled.unsettled == settled.orders.get("UNHEALTHY", 0), summary
