"""Jinja2 templates in task payloads (e-mail subjects, confirmation descriptions), sandboxed and
bounded.

A template is checked when its flow is saved: a syntax error, a variable that can never exist or
expressions nested deeper than MAX_NESTING are validation problems at the template's pointer. At
run time an undefined value (a missing key in the order's data) fails the task with a message
naming it; ``default`` serves optional fields.

Rendering runs in a thread, off the event loop, within bounds a tenant cannot lift: at most
RENDER_SECONDS of work, MAX_OUTPUT_CHARS of output (and of any one value made on the way: a
repeated, padded, replaced or joined string), and MAX_RANGE items per ``range()``. A thread cannot
be killed, so the bounds are checked cooperatively: a trace function on the template's own frames
watches the clock at every line, and the operations that grow a value check its size first.
A bound hit fails the task for good with a message naming the bound (docs/reference/limits.md).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from types import FrameType
from typing import Annotated, Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    UndefinedError,
    meta,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace
from pydantic import AfterValidator, StringConstraints

from ordermill.errors import PermanentError
from ordermill.handlers.base import TaskContext

VARIABLES = ("order", "orderLines", "addresses", "space", "flow", "task")
MAX_TEMPLATE_LENGTH = 100_000
MAX_NESTING = 16
"""Brackets nested inside one ``{{ … }}`` or ``{% … %}`` tag."""
MAX_TAG_CHARS = 2_000
"""Characters inside one tag."""
MAX_OPERATORS = 32
"""Operators in one tag: a chain compiles to nested calls, which Python compiles slowly."""
MAX_OUTPUT_CHARS = 1_000_000
"""A rendered template, and any one value made while rendering it, in characters."""
MAX_RANGE = 10_000
"""Items one ``range()`` may yield."""
RENDER_SECONDS = 1.0
"""Work one render may take (the clock is read at every line the template runs)."""

_TAG = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)
_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_OPERATOR = re.compile(r"\b(?:and|or|not|in|is|if)\b|\*\*|//|[-+*/%~<>]=?|[!=]=|\|")
_WIDE_FORMAT = re.compile(r"[%:{][^a-zA-Z%{}]*?\d{7,}")  # a width or precision of 1e6 or more
_GROWING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap"})


class TemplateBound(Exception):
    """A render went past one of the bounds; the message names it."""


def _bound(message: str) -> TemplateBound:
    return TemplateBound(message)


def _within(length: int, what: str) -> None:
    if length > MAX_OUTPUT_CHARS:
        raise _bound(f"{what} would be longer than {MAX_OUTPUT_CHARS} characters or items")


def _sized(value: Any, what: str) -> Any:
    if isinstance(value, str | list | tuple):
        _within(len(value), what)
    return value


def _joined_length(items: Any, separator: str = "") -> int:
    if not isinstance(items, list | tuple):
        return 0  # an iterator or a mapping is bounded by what made it
    return sum(len(str(item)) for item in items) + len(separator) * len(items)


def _check_call(name: str, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse calls that would make a value too large before they allocate it."""
    values = (*args, *kwargs.values())
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if name in _GROWING and any(abs(number) > MAX_OUTPUT_CHARS for number in numbers):
        raise _bound(f"{name}() with a width above {MAX_OUTPUT_CHARS}")
    if name in ("format", "format_map") and isinstance(owner, str) and _WIDE_FORMAT.search(owner):
        raise _bound(f"a format width above {MAX_OUTPUT_CHARS}")
    if name == "replace" and isinstance(owner, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = len(owner) + 1 if not old else owner.count(old)
        _within(len(owner) + count * max(len(new) - len(old), 0), "replace()'s result")
    if name == "join" and args:
        _within(_joined_length(args[0], owner if isinstance(owner, str) else ""), "a join")


class _Clock:
    """The deadline of the render running in this thread, checked at every template line."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise _bound(f"rendering took longer than {RENDER_SECONDS:g} s")

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != "<template>":
            return None
        self.check()
        return self._line

    def _line(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.check()
        return self._line


class _BoundedCodeGenerator(CodeGenerator):
    """``a ~ b ~ …`` checks the joined length before it joins."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:  # noqa: N802 (Jinja's visitor name)
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.bounded_join({join}, (")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


class _BoundedNamespace(Namespace):
    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _sized(value, f"namespace value {name!r}"))


def _range(*args: int) -> Iterator[int]:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _bound(f"range() of more than {MAX_RANGE} items")
    return iter(numbers)


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter that checks its arguments first (its value comes first in ``args``,
    after the evaluation context for the filters that take one)."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        start = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
        value, rest = args[start], args[start + 1 :]
        if name == "join":
            separator = rest[0] if rest else kwargs.get("d", "")
            _check_call(name, str(separator), (value,), {})
        else:
            _check_call(name, value, rest, kwargs)
        return _sized(function(*args, **kwargs), f"the {name} filter's result")

    bounded.__dict__.update(function.__dict__)  # keeps the pass_context / pass_eval_context mark
    return bounded


class _OrderEnvironment(SandboxedEnvironment):
    """Dot access reads a mapping's keys first, so ``line.items`` is the order line's items and
    not the ``dict.items`` method. Operators, calls and filters that grow values are bounded."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        # No constant folding: an expression is evaluated at render time, within the bounds,
        # never while a flow is being saved.
        super().__init__(optimized=False, **options)
        self.globals.update(range=_range, namespace=_BoundedNamespace)
        for name in (*_GROWING & set(self.filters), "format", "replace", "join"):
            self.filters[name] = _bounded_filter(name, self.filters[name])

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(times, int):
                    _within(len(sequence) * max(times, 0), "a repeated value")
        elif operator == "**" and isinstance(right, int) and abs(right) > 1024:
            raise _bound("an exponent above 1024")
        elif operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise _bound(f"a format width above {MAX_OUTPUT_CHARS}")
        elif operator == "+" and all(isinstance(v, str | list | tuple) for v in (left, right)):
            _within(len(left) + len(right), "a joined value")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        name = getattr(__obj, "__name__", "")
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        _check_call(name, getattr(method, "__self__", None), args, kwargs)
        return SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)

    def bounded_join(self, join: Callable[[Any], str], parts: tuple[Any, ...]) -> str:
        _within(_joined_length(parts), "a joined value")
        return join(parts)


_TEXT = _OrderEnvironment(undefined=StrictUndefined, autoescape=False)
# HTML bodies escape what they interpolate: order data is customer input.
_HTML = _OrderEnvironment(undefined=StrictUndefined, autoescape=True)


@lru_cache(maxsize=1024)
def compile_template(source: str, *, html: bool = False) -> Template:
    """The compiled template (cached: the same payload is rendered for many orders)."""
    return (_HTML if html else _TEXT).from_string(source)


def _check_nesting(source: str) -> None:
    """Jinja's parser recurses per bracket: refuse deep nesting before it parses."""
    for match in _TAG.finditer(source):
        line = source.count("\n", 0, match.start()) + 1
        inside = match.group(1) or match.group(2) or ""
        if len(inside) > MAX_TAG_CHARS:
            raise ValueError(
                f"the tag on line {line} has {len(inside)} characters; "
                f"templates allow at most {MAX_TAG_CHARS} in one tag"
            )
        operators = len(_OPERATOR.findall(_LITERAL.sub("", inside)))
        if operators > MAX_OPERATORS:
            raise ValueError(
                f"the tag on line {line} chains {operators} operators or filters; "
                f"templates allow at most {MAX_OPERATORS} in one tag"
            )
        depth = deepest = 0
        for char in inside:
            if char in "([{":
                depth += 1
                deepest = max(deepest, depth)
            elif char in ")]}":
                depth -= 1
        if deepest > MAX_NESTING:
            raise ValueError(
                f"an expression on line {line} nests {deepest} brackets deep; "
                f"templates allow at most {MAX_NESTING}"
            )


def check_template(source: str) -> str:
    """Raise ValueError saying what to fix when ``source`` is not a usable template."""
    _check_nesting(source)
    try:
        unknown = meta.find_undeclared_variables(_TEXT.parse(source)) - set(VARIABLES)
        compile_template(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except (RecursionError, SyntaxError) as exc:  # operator chains nest in the compiled code
        raise ValueError("the template's expressions are too long or nest too deeply") from exc
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


def render_bounded(source: str, variables: dict[str, Any], *, html: bool = False) -> str:
    """Render within the bounds, in the calling thread; raises TemplateBound past one."""
    template = compile_template(source, html=html)
    clock = _Clock(RENDER_SECONDS)
    previous = sys.gettrace()
    sys.settrace(clock.trace)
    try:
        parts: list[str] = []
        size = 0
        for part in template.generate(variables):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise _bound(f"the output would be longer than {MAX_OUTPUT_CHARS} characters")
            parts.append(part)
        return "".join(parts)
    finally:
        sys.settrace(previous)


async def render(source: str, variables: dict[str, Any], *, field: str, html: bool = False) -> str:
    """Render one payload template off the event loop; what goes wrong becomes a
    PermanentError naming ``field``."""
    try:
        return await asyncio.to_thread(render_bounded, source, variables, html=html)
    except TemplateBound as exc:
        raise PermanentError(f"the {field} template went past a limit: {exc}") from exc
    except UndefinedError as exc:
        raise PermanentError(
            f"the {field} template uses an undefined value: {exc.message}; fix the order or "
            "give the value a fallback, e.g. {{ order.data.note | default('') }}"
        ) from exc
    except SecurityError as exc:
        raise PermanentError(f"the {field} template did something unsafe: {exc}") from exc
    except Exception as exc:  # a template can raise anything its expressions raise
        raise PermanentError(f"the {field} template failed: {type(exc).__name__}: {exc}") from exc
