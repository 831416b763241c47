"""The database schema as SQLAlchemy Core tables, shared by SQLite and PostgreSQL.

Durability is a constraint here, not a hope: one task per order and definition key, one attempt
per task and number, one order per space and third-party id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back time-zone aware.

    SQLite has no time zones: we store naive UTC there and reattach UTC on read, so times compare
    correctly as text and every value leaving storage is aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

instance = Table(
    "instance",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

spaces = Table(
    "spaces",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    # Per-space connector allowances (CIDRs and http host names), on top of the operator's.
    Column("settings", Json, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("space_key", ForeignKey("spaces.key", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    # Role names (built-in or the space's custom roles) whose permissions the key holds.
    Column("roles", Json, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-cased
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200)),  # Argon2id (PHC string); None until one is set
    # The TOTP second factor: its base32 secret once confirmed, and hashes of unused recovery
    # codes (each works once).
    Column("totp_secret", String(64)),
    Column("recovery_codes", Json),
    Column("totp_last_step", BigInteger),  # the last time step used: a code works once
    Column("created_at", UTCDateTime, nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("space_key", ForeignKey("spaces.key", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("permissions", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("space_key", "name"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("space_key", ForeignKey("spaces.key", ondelete="CASCADE"), primary_key=True),
    Column("roles", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("space_key", String(128), nullable=False),
    Column("client", String(100)),
    Column("user_agent", String(300)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

# Single-use links: invitations, password resets, first sign-in. Only the hash is kept.
user_tokens = Table(
    "user_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("space_key", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# Failed sign-ins per account and per client address, for slowing guessers down.
signin_failures = Table(
    "signin_failures",
    metadata,
    Column("subject", String(400), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("space_key", String(128)),  # None for instance-wide actions (creating a space)
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(400), nullable=False),
    Column("client", String(100)),
    Column("action", String(64), nullable=False),
    Column("target", String(400)),
    Column("changes", Json),
    Index("ix_audit_space", "space_key", "id"),
)

flows = Table(
    "flows",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("space_key", ForeignKey("spaces.key", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("current_version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    UniqueConstraint("space_key", "key"),
)

flow_versions = Table(
    "flow_versions",
    metadata,
    Column("flow_id", ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("definition", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("space_key", ForeignKey("spaces.key", ondelete="CASCADE"), nullable=False),
    Column("flow_id", ForeignKey("flows.id"), nullable=False),
    Column("flow_key", String(128), nullable=False),
    Column("flow_version", Integer, nullable=False),
    Column("third_party_order_id", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    # The order as the client sent it (the connector's order shape without updateUrl).
    Column("body", Json, nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("deadline", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    # Raised by every write of the lifecycle writer (storage/writer.py).
    Column("version", Integer, nullable=False, server_default=text("0")),
    # Paused by an operator: a flag beside the status (who, when, why).
    Column("paused_at", UTCDateTime),
    Column("paused_by", String(200)),
    Column("paused_reason", String(2000)),
    Column("cancel_reason", String(2000)),
    # Each restart onto another version of the flow: [{at, by, fromVersion, toVersion, ...}].
    Column("restarts", Json),
    # The content's revision: 1 as created, one more per amendment (PATCH /api/orders/{id}).
    Column("revision", Integer, nullable=False, server_default=text("1")),
    UniqueConstraint("space_key", "third_party_order_id"),
    # The list of orders is newest first (by id) within a space; each of its filters has an
    # index that reads in that order, so a page stops after its last row (migration 0009).
    Index("ix_orders_space_id", "space_key", "id"),
    Index("ix_orders_space_created", "space_key", "created_at", "id"),
    Index("ix_orders_space_status", "space_key", "status", "id"),
    Index("ix_orders_space_flow", "space_key", "flow_key", "id"),
    Index("ix_orders_space_deadline", "space_key", "deadline", "id"),
    # The reconcile pass looks only at orders in progress.
    Index(
        "ix_orders_in_progress",
        "id",
        sqlite_where=text("status = 'IN_PROGRESS'"),
        postgresql_where=text("status = 'IN_PROGRESS'"),
    ),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("stage_index", Integer, nullable=False),
    Column("stage_key", String(128), nullable=False),
    Column("task_key", String(128), nullable=False),
    Column("handler_key", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    # Attempts made so far, and the attempt count at which the current retry budget began
    # (an operator retry grants a fresh budget without renumbering attempts).
    Column("attempts", Integer, nullable=False, default=0),
    Column("budget_base", Integer, nullable=False, default=0),
    # When the task is due: PENDING runs then, WAITING times out (or fires, for timers) then.
    Column("due_at", UTCDateTime),
    Column("wake", String(16)),
    # While the order is paused, due_at is kept here (and due_at is NULL).
    Column("held_due_at", UTCDateTime),
    # A WAITING task's heartbeat: each progress note pushes its deadline this far ahead.
    Column("heartbeat_ms", Integer),
    # The task waits for a person's answer (its question is in result.confirmation).
    Column("asks_question", Boolean, nullable=False, server_default=text("false")),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("delivery_id", String(64), nullable=False, unique=True),
    # When the current delivery began (creation, operator retry, redelivery): links in the
    # request body expire relative to it, so every attempt of one delivery sends equal bytes.
    Column("delivery_epoch", UTCDateTime),
    Column("feedback_token_hash", String(64), unique=True),
    Column("result", Json),
    Column("error", Json),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    UniqueConstraint("order_id", "task_key"),
    # Claiming only ever looks at live rows; finished work never slows it down.
    Index(
        "ix_tasks_due",
        "due_at",
        sqlite_where=text("status IN ('PENDING', 'WAITING')"),
        postgresql_where=text("status IN ('PENDING', 'WAITING')"),
    ),
    Index(
        "ix_tasks_lease",
        "lease_expires_at",
        sqlite_where=text("status = 'RUNNING'"),
        postgresql_where=text("status = 'RUNNING'"),
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float),
    Column("request", Json),
    Column("response_body", Text),
    Column("error_class", String(64)),
    Column("error_message", Text),
    UniqueConstraint("task_id", "number"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("message", Text),
    Column("data", Json),
    Column("received_at", UTCDateTime, nullable=False),
    # Final feedback that arrived while the task was still running is applied afterwards.
    Column("applied", Boolean, nullable=False, default=False),
    Column("problem", Json),  # an RFC 9457 problem object sent with a failure
    Column("assets", Json),
)

signing_secrets = Table(
    "signing_secrets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("space_key", ForeignKey("spaces.key", ondelete="CASCADE"), nullable=False, index=True),
    # Kept in the clear: signing needs the secret itself, so it cannot be hashed.
    Column("secret", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # None for the current secret; an old secret keeps signing until it expires (rotation overlap).
    Column("expires_at", UTCDateTime),
)

order_assets = Table(
    "order_assets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", String(200)),  # None: an asset of the whole order (an export)
    Column("asset_id", String(200), nullable=False),
    Column("url", Text),  # an outside URL; None when ordermill stores the bytes
    Column("blob_key", Text),  # where ordermill stores the bytes
    Column("file_name", String(300)),
    Column("content_type", String(200)),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("is_public", Boolean, nullable=False, default=False),
    Column("source", String(32), nullable=False),  # feedback | export
    Column("task_key", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_order_assets_order", "order_id", "id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("type", String(64), nullable=False),
    Column("task_key", String(128)),
    Column("actor", String(200)),
    Column("data", Json),
    Index("ix_events_order", "order_id", "id"),
)


# Connector endpoints a space subscribed to its orders' events (SPEC §5.4).
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("space_key", ForeignKey("spaces.key", ondelete="CASCADE"), nullable=False),
    Column("uri", Text, nullable=False),
    Column("events", Json, nullable=False),
    Column("flow_keys", Json),  # None: every flow of the space
    Column("enabled", Boolean, nullable=False),
    Column("failures", Integer, nullable=False),  # deliveries given up on in a row
    Column("failing_since", UTCDateTime),  # when the current run of give-ups began
    Column("disabled_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_subscriptions_space", "space_key"),
)

# The outbox: one row per event per subscription, written in the transaction of the change it
# describes; delivered in id order per (subscription, order).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscription_id", ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("event", Json, nullable=False),
    Column("status", String(16), nullable=False),  # PENDING | DELIVERED | GAVE_UP | SKIPPED
    Column("delivery_id", String(40), nullable=False),
    Column("body", LargeBinary),  # the bytes sent, fixed at the first attempt
    Column("attempts", Integer, nullable=False),
    Column("budget_base", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", UTCDateTime),
    Column("status_code", Integer),
    Column("error", Text),
    Column("request", Json),
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Index("ix_outbox_line", "subscription_id", "order_id", "status", "id"),
    Index("ix_outbox_due", "status", "due_at"),
)

# The first answer to a steering request sent with an Idempotency-Key, per space and key, for
# a day: a resend replays it instead of acting again. ``status`` NULL: still being answered.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("space_key", String(64), nullable=False),  # "*" for the admin key
    Column("key", String(200), nullable=False),
    Column("route", String(300), nullable=False),  # method and path
    Column("body_hash", String(64), nullable=False),  # SHA-256 of the request body
    Column("status", Integer),
    Column("answer", Json),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("space_key", "key"),
    Index("ix_idempotency_keys_created", "created_at"),
)

# Queries repeat the partial indexes' conditions as literal SQL: SQLite (and PostgreSQL's
# generic plans) use a partial index only when the query's WHERE visibly implies the index's.
IN_RUNNABLE_INDEX = text("tasks.status IN ('PENDING', 'WAITING')")
IN_LEASE_INDEX = text("tasks.status = 'RUNNING'")
