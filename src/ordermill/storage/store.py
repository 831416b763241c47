"""The Store: every transactional operation of ordermill, on SQLite or PostgreSQL.

Each public method is one transaction in which a state change and its timeline events commit
together; a crash at any point leaves either all of it or none of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.clock import Clock
from ordermill.errors import Conflict, NotFound
from ordermill.flows.amend import AMENDABLE, MAX_DIFF_ENTRIES, changes, merge_patch, patch_hash
from ordermill.flows.explain import Explanation, explain
from ordermill.flows.lifecycle import (
    Amended,
    Decision,
    Operator,
    OperatorAction,
    OrderState,
    Refusal,
    Replan,
    Restart,
    decide,
)
from ordermill.flows.model import FlowDefinition
from ordermill.flows.order import earliest_deadline, order_value
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.work import ClaimedTask, Completion
from ordermill.storage import tables as t
from ordermill.storage import writer
from ordermill.storage.advance import UnitOfWork
from ordermill.storage.assets import assets_of_orders
from ordermill.storage.batching import GroupCommit
from ordermill.storage.confirmations import ConfirmationStore
from ordermill.storage.database import Database
from ordermill.storage.eventlog import log_committed
from ordermill.storage.feedback import (
    Feedback,
    due_waiting,
    find_target,
    finish_with_feedback,
    held_feedback,
    receive_feedback,
    timer_change,
    with_held_feedback,
)
from ordermill.storage.flowdefs import FlowStore
from ordermill.storage.idempotency import IdempotencyStore
from ordermill.storage.ids import new_id
from ordermill.storage.notify import Wakeups
from ordermill.storage.orders import (
    NewOrder,
    OrderReads,
    OrderView,
    TaskView,
    existing_or_conflict,
    insert_orders,
    order_facts,
    task_view,
)
from ordermill.storage.search import replace_text, search_row
from ordermill.storage.spaces import SpaceStore, hash_secret
from ordermill.storage.subscriptions import SubscriptionStore, record_outbox
from ordermill.storage.work import (
    amendment_of,
    claim_due,
    claim_rows,
    extend_leases,
    failure_trigger,
    load_orders,
    make_claimed,
    record_completions,
    select_claimable,
    stranded_orders,
)

Listener = Callable[[], None]
_CONTENT = select(t.orders.c.body, t.orders.c.revision).where(t.orders.c.id == bindparam("id"))
_LAST_AMENDMENT = (
    select(t.events.c.data)
    .where(t.events.c.order_id == bindparam("id"), t.events.c.type == "order.amended")
    .order_by(t.events.c.id.desc())
    .limit(1)
)


class Store(OrderReads):
    """Orders, tasks and their transitions. Spaces and flows live in ``spaces`` and ``flows``."""

    def __init__(self, db: Database, clock: Clock, token_secret: str) -> None:
        self.db = db
        self.clock = clock
        self.token_secret = token_secret
        self.spaces = SpaceStore(db, clock)
        self.flows = FlowStore(db, clock)
        self.subscriptions = SubscriptionStore(db)
        self.confirmations = ConfirmationStore(db, clock, unit=self.unit, flow_of=self.flow_of)
        self.idempotency = IdempotencyStore(db, clock)
        self._listeners: list[Listener] = []
        self.wakeups = Wakeups(db)  # which worker a commit wakes, when none runs here
        self._intake: GroupCommit[NewOrder, tuple[OrderView, bool]] = GroupCommit(
            self._create_orders
        )

    def on_new_work(self, listener: Listener) -> None:
        """Call ``listener`` after any commit that made tasks runnable in this process."""
        self._listeners.append(listener)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[UnitOfWork]:
        async with self.db.transaction() as conn:
            uow = UnitOfWork(conn, self.clock.now(), self.token_secret)
            yield uow
            committed = uow.events
            await record_outbox(uow)
            wake = uow.new_tasks and not self.db.is_sqlite and not self._listeners
            await uow.flush(wake=self.wakeups.next_channel() if wake else None)
        log_committed(committed)
        if uow.new_tasks:
            for listener in self._listeners:
                listener()

    async def flow_of(self, flow_id: int, version: int) -> FlowDefinition:
        return (await self.flows.version_by_id(flow_id, version)).definition

    # -- intake and operator actions ---------------------------------------------------------

    async def create_order(
        self, space_key: str, flow_key: str, body: dict[str, Any], *, start: bool, actor: str
    ) -> tuple[OrderView, bool]:
        """Store the order (and start it). A resend of the same order returns the stored one.

        Orders that arrive together share one transaction (group commit); the answer comes
        once that transaction committed. No reads in the usual case: the insert picks the
        flow's current version itself, and the answer is built from what was written.
        """
        order = NewOrder(new_id("ord_"), space_key, flow_key, body, start, actor)
        return await self._intake.submit(order)

    async def _create_orders(
        self, intakes: Sequence[NewOrder]
    ) -> list[tuple[OrderView, bool] | BaseException]:
        """One transaction for a batch of new orders."""
        async with self.unit() as uow:
            pins = await insert_orders(uow, intakes)
            statuses = await self._start_new(uow, intakes, pins)
        tasks: dict[str, list[TaskView]] = {}
        for row in uow.created_tasks:
            tasks.setdefault(row["order_id"], []).append(task_view(SimpleNamespace(**row)))
        answers: list[tuple[OrderView, bool] | BaseException] = []
        for intake, pin in zip(intakes, pins, strict=True):
            order_id = intake.order_id
            if pin is None:
                answers.append(await self._resent_or_unknown(intake))
                continue
            order = OrderView(
                id=order_id,
                space_key=intake.space_key,
                flow_key=intake.flow_key,
                flow_id=pin[0],
                flow_version=pin[1],
                third_party_order_id=intake.body["thirdPartyOrderId"],
                status=statuses[order_id],
                body=intake.body,
                value=order_value(intake.body),
                deadline=earliest_deadline(intake.body),
                created_at=uow.now,
                updated_at=uow.now,
                ended_at=None,
                tasks=tuple(tasks.get(order_id, ())),
            )
            answers.append((order, True))
        return answers

    async def _resent_or_unknown(self, intake: NewOrder) -> tuple[OrderView, bool] | BaseException:
        """An order that inserted nothing: the stored one again, a conflict, or no such flow."""
        try:
            existing = await self.find_order(intake.space_key, intake.body["thirdPartyOrderId"])
            if existing is None:
                return NotFound(
                    f"flow {intake.flow_key!r} does not exist in space {intake.space_key!r}"
                )
            return existing_or_conflict(existing, intake.flow_key, intake.body), False
        except Exception as exc:
            return exc

    async def _start_new(
        self,
        uow: UnitOfWork,
        intakes: Sequence[NewOrder],
        pins: Sequence[tuple[int, int] | None],
    ) -> dict[str, OrderStatus]:
        """Start the orders just inserted in ``uow`` that asked to start, in one writer batch."""
        statuses: dict[str, OrderStatus] = {}
        locked: dict[str, writer.LockedOrder] = {}
        changes: list[writer.Change] = []
        for intake, pin in zip(intakes, pins, strict=True):
            order_id = intake.order_id
            if pin is None:
                continue
            status = OrderStatus.IN_PROGRESS if intake.start else OrderStatus.CREATED
            statuses[order_id] = status
            if intake.start:
                # Written in this unit, so its state is known: no read, no lock.
                locked[order_id] = writer.LockedOrder(OrderState(status), fresh=True)
                flow = await self.flow_of(*pin)
                changes.append(writer.Change(order_id, flow, Replan(), actor=intake.actor))
        if changes:
            answers = await writer.apply(uow, changes, locked)
            for change, answer in zip(changes, answers, strict=True):
                if isinstance(answer, Decision):
                    statuses[change.order_id] = answer.state.status
        return statuses

    async def amend_order(
        self,
        space_key: str | None,
        order_id: str,
        patch: dict[str, Any],
        *,
        based_on: int | None,
        reason: str | None,
        actor: str,
        validate: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[OrderView, bool]:
        """Apply a JSON Merge Patch of addresses, data and order lines as a new revision.

        The patch is merged under the order's row lock, so concurrent amendments apply one after
        the other. ``based_on`` (the revision the sender saw) makes a resend harmless: if the
        order is one revision further by this very patch, nothing changes; by another, 409.
        ``validate`` checks the merged content as an order body. Answers (order, amended).
        """
        order = await self.get_order(space_key, order_id)
        digest = patch_hash(patch)
        async with self.unit() as uow:
            locked = await writer.lock_orders(uow, [order_id])
            flow = await self.flow_of(order.flow_id, locked[order_id].flow_version)
            row = (await uow.conn.execute(_CONTENT, {"id": order_id})).one()
            if based_on is not None and row.revision != based_on:
                last = (await uow.conn.execute(_LAST_AMENDMENT, {"id": order_id})).scalar()
                repeated = last is not None and last.get("patchHash") == digest
                if not (repeated and row.revision == based_on + 1):
                    raise Conflict(
                        f"the order is at revision {row.revision}, not {based_on}: read it "
                        "again and patch the revision you see"
                    )
                amended = False
            else:
                body = dict(row.body)
                for name in AMENDABLE:
                    if name in patch:
                        body[name] = merge_patch(row.body.get(name), patch[name])
                body = validate(body)
                diff = changes(
                    {name: row.body.get(name) for name in AMENDABLE},
                    {name: body.get(name) for name in AMENDABLE},
                )
                amended = bool(diff)
            if amended:
                revision = row.revision + 1
                details = {
                    "basedOn": row.revision,
                    "reason": reason,
                    "diff": diff[:MAX_DIFF_ENTRIES],
                    "patchHash": digest,
                }
                event = Amended(revision, tuple(d["pointer"] for d in diff), details)
                values = {
                    "body": body,
                    "revision": revision,
                    "value": order_value(body),
                    "deadline": earliest_deadline(body),
                }
                change = writer.Change(order_id, flow, event, actor=actor, order_values=values)
                [answer] = await writer.apply(uow, [change], locked)
                if isinstance(answer, Refusal):
                    raise answer.error()
                await uow.conn.execute(
                    replace_text(uow.conn.dialect.name),
                    search_row(order_id, order.space_key, body),
                )
        return await self.get_order(space_key, order_id), amended

    async def start_order(self, space_key: str | None, order_id: str, actor: str) -> OrderView:
        return await self._operate(space_key, order_id, OperatorAction(Operator.START), actor)

    async def retry_order(
        self,
        space_key: str | None,
        order_id: str,
        actor: str,
        *,
        task_key: str | None = None,
        dry_run: bool = False,
    ) -> OrderView:
        """Give the failed and timed-out tasks (or only ``task_key``) a fresh retry budget;
        the order runs again."""
        order = None
        if task_key is not None:
            order = await self.get_order(space_key, order_id)
            if not any(task.key == task_key for task in order.tasks):
                raise NotFound(f"order {order_id!r} has no task {task_key!r}")
        event = OperatorAction(Operator.RETRY, task_key)
        return await self._operate(space_key, order_id, event, actor, order, dry_run=dry_run)

    async def redeliver_task(
        self, space_key: str | None, order_id: str, task_key: str, actor: str
    ) -> OrderView:
        """Run an ended task again under the same delivery id, with a fresh retry budget."""
        order = await self.get_order(space_key, order_id)
        if not any(task.key == task_key for task in order.tasks):
            raise NotFound(f"order {order_id!r} has no task {task_key!r}")
        event = OperatorAction(Operator.REDELIVER, task_key)
        return await self._operate(space_key, order_id, event, actor, order)

    async def steer(
        self,
        space_key: str | None,
        order_id: str,
        action: Operator,
        actor: str,
        reason: str | None = None,
        *,
        dry_run: bool = False,
    ) -> OrderView:
        """Cancel, pause or resume the order (``action``), with the operator's reason.

        While paused, nothing new of the order starts (attempts in flight finish); resuming
        lets what fell due meanwhile run or fire at once."""
        event = OperatorAction(action, reason=reason)
        return await self._operate(space_key, order_id, event, actor, dry_run=dry_run)

    async def skip_task(
        self,
        space_key: str | None,
        order_id: str,
        task_key: str,
        actor: str,
        reason: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> OrderView:
        """Mark a failed, waiting or timed-out task succeeded by hand; its successors run."""
        order = await self.get_order(space_key, order_id)
        if not any(task.key == task_key for task in order.tasks):
            raise NotFound(f"order {order_id!r} has no task {task_key!r}")
        event = OperatorAction(Operator.SKIP, task_key, reason=reason)
        values = {} if result is None else {"result": {**result, "skipped": True}}
        return await self._operate(space_key, order_id, event, actor, order, values)

    async def restart_order(
        self,
        space_key: str | None,
        order_id: str,
        actor: str,
        *,
        flow_version: int | None = None,
        from_start: bool = False,
        reason: str | None = None,
        dry_run: bool = False,
    ) -> OrderView:
        """Move the order onto ``flow_version`` of its flow (None: the latest).

        The version it moves from is read under the order's lock, so of two restarts that race
        the second records the version the first moved the order onto."""
        order = await self.get_order(space_key, order_id)
        flow = await self.flows.get(order.space_key, order.flow_key)
        version = flow.current_version if flow_version is None else flow_version
        definition = await self.flow_of(order.flow_id, version)

        async def change(from_version: int) -> writer.Change:
            previous = await self.flow_of(order.flow_id, from_version)
            event = Restart(from_version, version, from_start, reason, previous)
            return writer.Change(order_id, definition, event, actor=actor)

        return await self._apply_one(space_key, order, change, dry_run)

    async def explain_order(self, space_key: str | None, order_id: str) -> Explanation:
        """What the order waits for now (``ordermill.flows.explain``)."""
        order = await self.get_order(space_key, order_id)
        flow = await self.flow_of(order.flow_id, order.flow_version)
        progress: dict[str, tuple[str, datetime]] = {}
        for event in await self.list_events(space_key, order_id):
            if event.type == "feedback.progress" and event.task_key and event.data:
                progress[event.task_key] = (str(event.data.get("message") or ""), event.at)
        return explain(flow, order_facts(order, progress), self.clock.now())

    async def _operate(
        self,
        space_key: str | None,
        order_id: str,
        event: OperatorAction,
        actor: str,
        order: OrderView | None = None,
        values: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> OrderView:
        """An operator's action through the lifecycle writer; a refusal is a Conflict (409)."""
        order = order or await self.get_order(space_key, order_id)

        async def change(version: int) -> writer.Change:
            flow = await self.flow_of(order.flow_id, version)
            return writer.Change(order_id, flow, event, values=values or {}, actor=actor)

        return await self._apply_one(space_key, order, change, dry_run)

    async def _apply_one(
        self,
        space_key: str | None,
        order: OrderView,
        change_on: Callable[[int], Awaitable[writer.Change]],
        dry_run: bool,
    ) -> OrderView:
        """Apply one change, built on the flow version the order runs on as read under its
        lock; ``dry_run`` asks the core under that lock and writes nothing (the order as it is
        is answered). A refusal is a Conflict (409) either way."""
        async with self.unit() as uow:
            locked = await writer.lock_orders(uow, [order.id])
            if order.id not in locked:
                raise NotFound(f"order {order.id!r} does not exist")
            change = await change_on(locked[order.id].flow_version)
            if dry_run:
                answer = decide(change.flow, locked[order.id].state, change.event)
            else:
                [answer] = await writer.apply(uow, [change], locked)
            if isinstance(answer, Refusal):
                raise answer.error()
        if dry_run:
            return order
        return await self.get_order(space_key, order.id)

    # -- the engine's side ---------------------------------------------------------------------

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, *, expired: bool = True
    ) -> list[ClaimedTask]:
        """Claim up to ``limit`` due tasks for ``owner`` under a lease, in one transaction.

        With ``expired`` it also takes over tasks whose worker's lease ran out.
        """
        lease = timedelta(seconds=lease_seconds)
        reclaimed: set[int] = set()
        if not expired and not self.db.is_sqlite:
            now = self.clock.now()
            async with self.db.autocommit() as conn:
                rows = await claim_due(conn, now, owner, lease, limit)
                orders = {row.order_id: row for row in rows}
                # Assets are written before the tasks that read them become due.
                assets = await assets_of_orders(
                    conn, {row.order_id for row in rows if row.has_assets}
                )
                contexts = await self._contexts(conn, rows, orders)
        else:
            async with self.unit() as uow:
                now = uow.now
                candidates = await select_claimable(uow.conn, now, limit, expired=expired)
                if not candidates:
                    return []
                rows = await claim_rows(uow, owner, lease, candidates)
                reclaimed = {row.id for row in candidates if row.status == TaskStatus.RUNNING.value}
                orders = await load_orders(uow.conn, {row.order_id for row in rows})
                assets = await assets_of_orders(
                    uow.conn, {order.id for order in orders.values() if order.has_assets}
                )
                contexts = await self._contexts(uow.conn, rows, orders)
        claimed = []
        for row in rows:
            order = orders[row.order_id]
            flow = await self.flow_of(order.flow_id, order.flow_version)
            task = make_claimed(row, order, flow, owner, now, self.token_secret)
            claimed.append(
                replace(
                    task,
                    assets=tuple(assets.get(row.order_id, ())),
                    reclaimed=row.id in reclaimed,
                    context=contexts.get(row.id),
                )
            )
        return claimed

    async def _contexts(
        self, conn: AsyncConnection, rows: Sequence[Any], orders: Mapping[str, Any]
    ) -> dict[int, dict[str, Any]]:
        """``context`` of each claimed task that has one: a failure stage task's trigger, or
        the amendment that sent a task again."""
        contexts: dict[int, dict[str, Any]] = {}
        for row in rows:
            order = orders[row.order_id]
            flow = await self.flow_of(order.flow_id, order.flow_version)
            if flow.is_failure_task(row.task_key):
                contexts[row.id] = {"trigger": await failure_trigger(conn, row.order_id)}
            elif order.revision > 1:
                amendment = await amendment_of(conn, row.order_id, row.task_key)
                if amendment is not None:
                    contexts[row.id] = {"amendment": amendment}
        return contexts

    async def complete(self, completions: list[Completion]) -> list[bool]:
        """Record many outcomes in one transaction (group commit); False marks a stale one."""
        # Only an outcome other than success may meet held feedback, whose handling reads the
        # task's row again; without one, the writer's updates go with the unit's last statement.
        settled = all(done.status is TaskStatus.SUCCEEDED for done in completions)
        async with self.unit() as uow:
            applied = await record_completions(uow, completions, last=settled)
            # Final feedback that came before the HTTP answer wins over whatever the attempt
            # itself ended in: the connector evidently got the order.
            unsettled = [
                done
                for done, ok in zip(completions, applied, strict=True)
                if ok and done.status is not TaskStatus.SUCCEEDED
            ]
            for done in await with_held_feedback(uow, unsettled):
                held = await held_feedback(uow, done.task.task_id)
                if held is not None:
                    await finish_with_feedback(
                        uow,
                        done.task.task_id,
                        done.task.order_id,
                        done.task.task_key,
                        held,
                        done.task.flow,
                        held=True,
                    )
        return applied

    async def extend_leases(self, owner: str, task_ids: list[int], lease_seconds: float) -> None:
        if task_ids:
            async with self.db.transaction() as conn:
                until = self.clock.now() + timedelta(seconds=lease_seconds)
                await extend_leases(conn, owner, task_ids, until)

    async def fire_due(self, limit: int = 200) -> int:
        """End WAITING tasks whose time has come (timers fire, waits time out)."""
        async with self.unit() as uow:
            rows = await due_waiting(uow, limit)
            changes = [
                timer_change(row, await self.flow_of(row.flow_id, row.flow_version)) for row in rows
            ]
            if changes:
                await writer.apply(uow, changes)
        return len(rows)

    async def reconcile(self, limit: int = 200) -> int:
        """Re-apply the core to orders IN_PROGRESS with no live work; returns how many moved.

        Every write of an order's state plans its next tasks in the same transaction, so this
        finds nothing unless a bug left an order behind. Each repair is written to the
        order's timeline as ``order.reconciled``.
        """
        async with self.unit() as uow:
            rows = await stranded_orders(uow.conn, limit)
            if not rows:
                return 0
            changes = [
                writer.Change(
                    row.id,
                    await self.flow_of(row.flow_id, row.flow_version),
                    Replan(),
                    events=(writer.Entry("order.reconciled", actor="engine"),),
                )
                for row in rows
            ]
            answers = await writer.apply(uow, changes)
        return sum(isinstance(answer, Decision) for answer in answers)

    async def gauges(self) -> tuple[dict[str, int], int, datetime | None]:
        """Orders by status, runnable tasks, and the due time of the oldest runnable one."""
        now = self.clock.now()
        runnable = (t.tasks.c.status == TaskStatus.PENDING.value) & (t.tasks.c.due_at <= now)
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.orders.c.status, func.count()).group_by(t.orders.c.status)
                )
            ).all()
            depth, oldest = (
                await conn.execute(select(func.count(), func.min(t.tasks.c.due_at)).where(runnable))
            ).one()
        by_status = {status.value: 0 for status in OrderStatus}
        by_status.update({row[0]: int(row[1]) for row in rows})
        return by_status, int(depth), _aware(oldest)

    async def feedback_space(self, token: str) -> str:
        """The space of the task a feedback token belongs to (NotFound for an unknown token)."""
        async with self.db.read() as conn:
            space_key = (
                await conn.execute(
                    select(t.orders.c.space_key)
                    .join(t.tasks, t.tasks.c.order_id == t.orders.c.id)
                    .where(t.tasks.c.feedback_token_hash == hash_secret(token))
                )
            ).scalar()
        if space_key is None:
            raise NotFound("no task has this update URL")
        return str(space_key)

    async def apply_feedback(self, token: str, feedback: Feedback) -> str:
        """Feedback posted to a task's updateUrl. Returns applied | held | duplicate | recorded."""
        async with self.unit() as uow:
            target = await find_target(uow, token)
            flow = await self.flow_of(target.flow_id, target.flow_version)
            return await receive_feedback(uow, target, feedback, flow)


def _aware(value: datetime | str | None) -> datetime | None:
    """Aggregates bypass column types on SQLite, so MIN(due_at) may come back as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
