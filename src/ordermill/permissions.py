"""Who may do what: permissions named ``app:resource:action``, roles made of them, and the one
table that says which permission every route of the application needs.

A principal's grants add up: its permissions are the union of its roles' permissions. The table
below is the only place that ties routes to permissions; `ordermill.api.access` enforces it for
every route, and a test walks the application's routes and fails on any route missing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Perm(StrEnum):
    ORDER_VIEW = "orders:order:view"
    ORDER_CREATE = "orders:order:create"
    ORDER_ACT = "orders:order:act"
    CONFIRMATION_VIEW = "orders:confirmation:view"
    CONFIRMATION_ANSWER = "orders:confirmation:answer"
    FLOW_VIEW = "flows:flow:view"
    FLOW_EDIT = "flows:flow:edit"
    KEY_MANAGE = "admin:key:manage"
    USER_MANAGE = "admin:user:manage"
    ROLE_MANAGE = "admin:role:manage"
    OWNER_MANAGE = "admin:owner:manage"
    SUBSCRIPTION_MANAGE = "admin:subscription:manage"
    SETTINGS_VIEW = "admin:settings:view"
    SETTINGS_EDIT = "admin:settings:edit"
    AUDIT_VIEW = "admin:audit:view"
    # Instance-wide: only the operator's admin key (ORDERMILL_ADMIN_KEY) holds it; no role can.
    SPACE_MANAGE = "instance:space:manage"


DESCRIPTIONS: Mapping[Perm, str] = MappingProxyType(
    {
        Perm.ORDER_VIEW: "read orders, their tasks, timelines, delivery logs and files",
        Perm.ORDER_CREATE: "create orders (started at once unless they ask not to be)",
        Perm.ORDER_ACT: "act on orders: start, retry, cancel, pause, resume, skip, restart, amend",
        Perm.CONFIRMATION_VIEW: "read the confirmation inbox",
        Perm.CONFIRMATION_ANSWER: "confirm or reject a confirmation",
        Perm.FLOW_VIEW: "read flows, their versions and the handler catalogue",
        Perm.FLOW_EDIT: "create, change, validate and delete flows",
        Perm.KEY_MANAGE: "create, list and revoke API keys",
        Perm.USER_MANAGE: "invite users, change their roles, remove them",
        Perm.ROLE_MANAGE: "create, change and delete custom roles",
        Perm.OWNER_MANAGE: "grant and take away the owner role",
        Perm.SUBSCRIPTION_MANAGE: "manage event subscriptions",
        Perm.SETTINGS_VIEW: "read the space's settings",
        Perm.SETTINGS_EDIT: "change the space's settings and read or rotate its signing secret",
        Perm.AUDIT_VIEW: "read the audit trail of administrative actions",
        Perm.SPACE_MANAGE: "create and list spaces, set connector allowances (admin key only)",
    }
)

# What a role inside a space may hold: everything but the instance-wide permission.
SPACE_PERMISSIONS: frozenset[Perm] = frozenset(p for p in Perm if p is not Perm.SPACE_MANAGE)
ALL_PERMISSIONS: frozenset[Perm] = frozenset(Perm)

_VIEW = frozenset({Perm.ORDER_VIEW, Perm.CONFIRMATION_VIEW, Perm.FLOW_VIEW})
_OPERATE = _VIEW | {Perm.ORDER_CREATE, Perm.ORDER_ACT, Perm.CONFIRMATION_ANSWER}

BUILTIN_ROLES: Mapping[str, frozenset[Perm]] = MappingProxyType(
    {
        "owner": SPACE_PERMISSIONS,
        "admin": SPACE_PERMISSIONS - {Perm.OWNER_MANAGE},
        "operator": frozenset(_OPERATE),
        "viewer": _VIEW,
    }
)


def permissions_of(
    roles: Iterable[str], custom: Mapping[str, Iterable[str]] | None = None
) -> frozenset[Perm]:
    """The union of the roles' permissions; unknown roles and permissions grant nothing."""
    granted: set[Perm] = set()
    for role in roles:
        if role in BUILTIN_ROLES:
            granted |= BUILTIN_ROLES[role]
        elif custom is not None and role in custom:
            granted |= {Perm(p) for p in custom[role] if p in _VALUES}
    return frozenset(granted & SPACE_PERMISSIONS)


_VALUES = frozenset(p.value for p in Perm)


def parse_permissions(names: Iterable[str]) -> frozenset[Perm]:
    """Permission names a custom role may hold; raises ValueError naming the first bad one."""
    result: set[Perm] = set()
    for name in names:
        if name not in _VALUES or Perm(name) not in SPACE_PERMISSIONS:
            raise ValueError(f"{name!r} is not a permission a role can hold")
        result.add(Perm(name))
    return frozenset(result)


class Access(StrEnum):
    """How a route is reached, apart from needing a permission."""

    PUBLIC = "public"  # no sign-in (health, sign-in page, token-protected links, static files)
    SIGNED_IN = "signed-in"  # any signed-in person or key (sign out, switch space, own sessions)


@dataclass(frozen=True)
class Rule:
    need: Perm | Access
    # A signed download link (``?expires=…&signature=…``) stands in for the permission; the
    # route itself verifies the link.
    signed_link: bool = False

    @property
    def permission(self) -> Perm | None:
        return self.need if isinstance(self.need, Perm) else None


_P = Access.PUBLIC
_S = Access.SIGNED_IN

# (method, path template) → what it needs. HEAD follows GET.
_TABLE: dict[tuple[str, str], Perm | Access] = {
    # Meta and documents.
    ("GET", "/healthz"): _P,
    ("GET", "/readyz"): _P,
    ("GET", "/metrics"): _P,
    ("GET", "/api/openapi.json"): _P,
    ("GET", "/api/docs"): _P,
    ("GET", "/api/handlers"): Perm.FLOW_VIEW,
    ("MOUNT", "/api/static"): _P,
    ("MOUNT", "/ui/static"): _P,
    # Flows.
    ("POST", "/api/flows"): Perm.FLOW_EDIT,
    ("GET", "/api/flows"): Perm.FLOW_VIEW,
    ("POST", "/api/flows/validate"): Perm.FLOW_EDIT,
    ("POST", "/api/flows/dry-run"): Perm.FLOW_VIEW,
    ("GET", "/api/flows/schema"): _P,
    ("GET", "/api/flows/{key}"): Perm.FLOW_VIEW,
    ("PUT", "/api/flows/{key}"): Perm.FLOW_EDIT,
    ("DELETE", "/api/flows/{key}"): Perm.FLOW_EDIT,
    ("GET", "/api/flows/{key}/versions"): Perm.FLOW_VIEW,
    ("GET", "/api/flows/{key}/versions/{number}"): Perm.FLOW_VIEW,
    # Orders.
    ("POST", "/api/orders"): Perm.ORDER_CREATE,
    ("GET", "/api/orders"): Perm.ORDER_VIEW,
    ("POST", "/api/orders/retry"): Perm.ORDER_ACT,
    ("GET", "/api/orders/{order_id}"): Perm.ORDER_VIEW,
    ("PATCH", "/api/orders/{order_id}"): Perm.ORDER_ACT,
    ("GET", "/api/orders/{order_id}/events"): Perm.ORDER_VIEW,
    ("GET", "/api/orders/{order_id}/tasks/{task_key}/attempts"): Perm.ORDER_VIEW,
    ("POST", "/api/orders/{order_id}/start"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/retry"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/tasks/{task_key}/retry"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/tasks/{task_key}/redeliver"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/cancel"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/pause"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/resume"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/restart"): Perm.ORDER_ACT,
    ("POST", "/api/orders/{order_id}/tasks/{task_key}/skip"): Perm.ORDER_ACT,
    ("GET", "/api/orders/{order_id}/explain"): Perm.ORDER_VIEW,
    ("POST", "/api/orders/pause"): Perm.ORDER_ACT,
    ("POST", "/api/orders/resume"): Perm.ORDER_ACT,
    ("POST", "/api/orders/cancel"): Perm.ORDER_ACT,
    ("POST", "/api/orders/restart"): Perm.ORDER_ACT,
    ("GET", "/api/orders/{order_id}/assets"): Perm.ORDER_VIEW,
    ("GET", "/api/assets/{asset_id}/download"): Perm.ORDER_VIEW,
    # Feedback and answer links carry their own signed token.
    ("POST", "/api/feedback/{token}"): _P,
    ("GET", "/confirmations/{confirmation_id}/answer/{action}/{assignee}"): _P,
    ("POST", "/confirmations/{confirmation_id}/answer/{action}/{assignee}"): _P,
    # Confirmations.
    ("GET", "/api/confirmations"): Perm.CONFIRMATION_VIEW,
    ("GET", "/api/confirmations/{confirmation_id}"): Perm.CONFIRMATION_VIEW,
    ("POST", "/api/confirmations/{confirmation_id}/confirm"): Perm.CONFIRMATION_ANSWER,
    ("POST", "/api/confirmations/{confirmation_id}/reject"): Perm.CONFIRMATION_ANSWER,
    # Spaces, keys, settings, people.
    ("POST", "/api/spaces"): Perm.SPACE_MANAGE,
    ("GET", "/api/spaces"): Perm.SPACE_MANAGE,
    ("GET", "/api/spaces/{key}"): Perm.SETTINGS_VIEW,
    ("GET", "/api/spaces/{key}/signing-secret"): Perm.SETTINGS_EDIT,
    ("POST", "/api/spaces/{key}/signing-secret/rotate"): Perm.SETTINGS_EDIT,
    ("PUT", "/api/spaces/{key}/connector-allowances"): Perm.SPACE_MANAGE,
    ("PUT", "/api/spaces/{key}/feedback-signature"): Perm.SETTINGS_EDIT,
    ("POST", "/api/spaces/{key}/api-keys"): Perm.KEY_MANAGE,
    ("GET", "/api/spaces/{key}/api-keys"): Perm.KEY_MANAGE,
    ("DELETE", "/api/spaces/{key}/api-keys/{key_id}"): Perm.KEY_MANAGE,
    ("POST", "/api/spaces/{key}/subscriptions"): Perm.SUBSCRIPTION_MANAGE,
    ("GET", "/api/spaces/{key}/subscriptions"): Perm.SUBSCRIPTION_MANAGE,
    ("GET", "/api/spaces/{key}/subscriptions/{subscription_id}"): Perm.SUBSCRIPTION_MANAGE,
    ("PATCH", "/api/spaces/{key}/subscriptions/{subscription_id}"): Perm.SUBSCRIPTION_MANAGE,
    ("DELETE", "/api/spaces/{key}/subscriptions/{subscription_id}"): Perm.SUBSCRIPTION_MANAGE,
    ("POST", "/api/spaces/{key}/subscriptions/{subscription_id}/test"): Perm.SUBSCRIPTION_MANAGE,
    ("POST", "/api/spaces/{key}/subscriptions/{subscription_id}/enable"): (
        Perm.SUBSCRIPTION_MANAGE
    ),
    ("GET", "/api/spaces/{key}/subscriptions/{subscription_id}/deliveries"): (
        Perm.SUBSCRIPTION_MANAGE
    ),
    ("POST", "/api/spaces/{key}/subscriptions/{subscription_id}/deliveries/{delivery}/redeliver"): (
        Perm.SUBSCRIPTION_MANAGE
    ),
    ("GET", "/api/roles"): Perm.USER_MANAGE,
    ("PUT", "/api/roles/{name}"): Perm.ROLE_MANAGE,
    ("DELETE", "/api/roles/{name}"): Perm.ROLE_MANAGE,
    ("GET", "/api/users"): Perm.USER_MANAGE,
    ("POST", "/api/users"): Perm.USER_MANAGE,
    ("PUT", "/api/users/{email}/roles"): Perm.USER_MANAGE,
    ("DELETE", "/api/users/{email}"): Perm.USER_MANAGE,
    ("GET", "/api/audit"): Perm.AUDIT_VIEW,
    # The UI.
    ("GET", "/signin"): _P,
    ("POST", "/signin"): _P,
    ("POST", "/signout"): _S,
    ("POST", "/signout/everywhere"): _S,
    ("GET", "/signin/link/{token}"): _P,
    ("POST", "/signin/link/{token}"): _P,
    ("GET", "/signin/forgot"): _P,
    ("POST", "/signin/forgot"): _P,
    ("GET", "/account"): _S,
    ("POST", "/account/sessions/{session_id}/revoke"): _S,
    ("POST", "/account/space"): _S,
    ("POST", "/signin/totp"): _P,
    ("GET", "/signin/oidc"): _P,
    ("GET", "/signin/oidc/callback"): _P,
    ("GET", "/account/totp"): _S,
    ("POST", "/account/totp"): _S,
    ("POST", "/account/totp/disable"): _S,
    ("GET", "/"): Perm.ORDER_VIEW,
    ("GET", "/orders/table"): Perm.ORDER_VIEW,
    ("POST", "/bulk/{action}/preview"): Perm.ORDER_ACT,
    ("POST", "/bulk/{action}"): Perm.ORDER_ACT,
    ("GET", "/orders/{order_id}"): Perm.ORDER_VIEW,
    ("GET", "/orders/{order_id}/live"): Perm.ORDER_VIEW,
    ("GET", "/orders/{order_id}/tasks/{task_key}"): Perm.ORDER_VIEW,
    ("POST", "/orders/{order_id}/{action}"): Perm.ORDER_ACT,
    ("POST", "/orders/{order_id}/tasks/{task_key}/{action}"): Perm.ORDER_ACT,
    ("GET", "/confirmations"): Perm.CONFIRMATION_VIEW,
    ("GET", "/confirmations/live"): Perm.CONFIRMATION_VIEW,
    ("GET", "/confirmations/count"): Perm.CONFIRMATION_VIEW,
    ("POST", "/confirmations/{confirmation_id}/answer"): Perm.CONFIRMATION_ANSWER,
    ("GET", "/flows"): Perm.FLOW_VIEW,
    ("POST", "/flows"): Perm.FLOW_EDIT,
    ("GET", "/flows/{key}"): Perm.FLOW_EDIT,
    ("POST", "/flows/{key}/validate"): Perm.FLOW_EDIT,
    ("POST", "/flows/{key}/save"): Perm.FLOW_EDIT,
    ("POST", "/flows/{key}/try"): Perm.FLOW_VIEW,  # a dry run changes nothing, as its API route
    ("GET", "/settings"): Perm.SETTINGS_VIEW,
    ("POST", "/settings/api-keys"): Perm.KEY_MANAGE,
    ("POST", "/settings/api-keys/{key_id}/revoke"): Perm.KEY_MANAGE,
    ("POST", "/settings/signing-secret/rotate"): Perm.SETTINGS_EDIT,
    ("POST", "/settings/subscriptions"): Perm.SUBSCRIPTION_MANAGE,
    ("POST", "/settings/subscriptions/{subscription_id}/enable"): Perm.SUBSCRIPTION_MANAGE,
    ("POST", "/settings/subscriptions/{subscription_id}/test"): Perm.SUBSCRIPTION_MANAGE,
    ("POST", "/settings/subscriptions/{subscription_id}/delete"): Perm.SUBSCRIPTION_MANAGE,
    ("GET", "/audit"): Perm.AUDIT_VIEW,
    ("GET", "/people"): Perm.USER_MANAGE,
    ("POST", "/people"): Perm.USER_MANAGE,
    ("POST", "/people/roles"): Perm.USER_MANAGE,
    ("POST", "/people/remove"): Perm.USER_MANAGE,
    # The demo connector `make run` serves to itself (only mounted in demo mode).
    ("POST", "/demo/connector"): _P,
    ("POST", "/demo/connector/with-feedback"): _P,
}

_SIGNED_LINKS = frozenset({("GET", "/api/assets/{asset_id}/download")})

ROUTE_RULES: Mapping[tuple[str, str], Rule] = MappingProxyType(
    {where: Rule(need, signed_link=where in _SIGNED_LINKS) for where, need in _TABLE.items()}
)


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route (by its path template), or None when the table lacks it."""
    return ROUTE_RULES.get(("GET" if method == "HEAD" else method, path))
