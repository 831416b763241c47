"""The domain core: what an order flow is, how it is validated, what runs next, when to retry.

Pure Python without I/O; it imports only the standard library and ``ordermill.errors``.
"""

from ordermill.flows.model import FlowDefinition, Join, RetryPolicy, Stage, TaskDefinition
from ordermill.flows.planner import Plan, TaskRef, derive_order_status, plan
from ordermill.flows.retry import (
    DEFAULT_RETRY,
    FailureKind,
    RetryDecision,
    classify_http_status,
    decide_retry,
    parse_retry_after,
)
from ordermill.flows.schema import flow_json_schema
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.validation import HandlerCatalog, parse_flow, validate_flow

__all__ = [
    "DEFAULT_RETRY",
    "FailureKind",
    "FlowDefinition",
    "HandlerCatalog",
    "Join",
    "OrderStatus",
    "Plan",
    "RetryDecision",
    "RetryPolicy",
    "Stage",
    "TaskDefinition",
    "TaskRef",
    "TaskStatus",
    "classify_http_status",
    "decide_retry",
    "derive_order_status",
    "flow_json_schema",
    "parse_flow",
    "parse_retry_after",
    "plan",
    "validate_flow",
]
