"""Jinja2 templates in task payloads (e-mail subjects, confirmation descriptions), sandboxed.

A template is checked when its flow is saved: a syntax error or a variable that can never exist
is a validation problem at the template's pointer. At run time an undefined value (a missing key
in the order's data) fails the task with a message naming it; ``default`` serves optional fields.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    UndefinedError,
    meta,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator, StringConstraints

from ordermill.errors import PermanentError
from ordermill.handlers.base import TaskContext

VARIABLES = ("order", "orderLines", "addresses", "space", "flow", "task")
MAX_TEMPLATE_LENGTH = 100_000


class _OrderEnvironment(SandboxedEnvironment):
    """Dot access reads a mapping's keys first, so ``line.items`` is the order line's items and
    not the ``dict.items`` method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_TEXT = _OrderEnvironment(undefined=StrictUndefined, autoescape=False)
# HTML bodies escape what they interpolate: order data is customer input.
_HTML = _OrderEnvironment(undefined=StrictUndefined, autoescape=True)


@lru_cache(maxsize=1024)
def compile_template(source: str, *, html: bool = False) -> Template:
    """The compiled template (cached: the same payload is rendered for many orders)."""
    return (_HTML if html else _TEXT).from_string(source)


def check_template(source: str) -> str:
    """Raise ValueError saying what to fix when ``source`` is not a usable template."""
    try:
        unknown = meta.find_undeclared_variables(_TEXT.parse(source)) - set(VARIABLES)
        compile_template(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ValueError(
            f"unknown template variable {names}; templates can use {', '.join(VARIABLES)} "
            "(for example {{ order.thirdPartyOrderId }} or {{ order.data.customerEmail }})"
        )
    return source


# Payload fields holding a Jinja2 template over the order, checked when the flow is saved.
# The length limits come first so a too-long text is reported as such, not compiled.
TemplateStr = Annotated[
    str, StringConstraints(max_length=MAX_TEMPLATE_LENGTH), AfterValidator(check_template)
]
BodyTemplate = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEMPLATE_LENGTH),
    AfterValidator(check_template),
]
ShortTemplate = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(check_template)
]


def template_context(ctx: TaskContext) -> dict[str, Any]:
    """The variables templates see: the order as stored, and where the task runs."""
    order = dict(ctx.order)
    order.update(id=ctx.order_id, spaceKey=ctx.space_key, flowKey=ctx.flow_key)
    return {
        "order": order,
        "orderLines": order.get("orderLines") or [],
        "addresses": order.get("addresses") or [],
        "space": {"key": ctx.space_key},
        "flow": {"key": ctx.flow_key, "version": ctx.flow_version},
        "task": {
            "key": ctx.task_key,
            "stageKey": ctx.stage_key,
            "attempt": ctx.attempt,
            "deliveryId": ctx.delivery_id,
        },
    }


def render(source: str, variables: dict[str, Any], *, field: str, html: bool = False) -> str:
    """Render one payload template; what goes wrong becomes a PermanentError naming ``field``."""
    try:
        return compile_template(source, html=html).render(variables)
    except UndefinedError as exc:
        raise PermanentError(
            f"the {field} template uses an undefined value: {exc.message}; fix the order or "
            "give the value a fallback, e.g. {{ order.data.note | default('') }}"
        ) from exc
    except SecurityError as exc:
        raise PermanentError(f"the {field} template did something unsafe: {exc}") from exc
    except Exception as exc:  # a template can raise anything its expressions raise
        raise PermanentError(f"the {field} template failed: {type(exc).__name__}: {exc}") from exc
