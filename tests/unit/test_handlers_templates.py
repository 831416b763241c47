"""Payload templates: checked when the flow is saved, rendered sandboxed over the order."""

from __future__ import annotations

import re
import time

import pytest

from ordermill.errors import PermanentError
from ordermill.handlers.templates import check_template, render, template_context
from ordermill.testing import make_context, sample_order


def variables() -> dict[str, object]:
    return template_context(make_context(order=sample_order("WEB-7")))


def test_the_context_holds_the_order_and_where_the_task_runs() -> None:
    ctx = make_context(order=sample_order("WEB-7"), attempt=2)

    context = template_context(ctx)

    assert context["order"] == {**sample_order("WEB-7"), "id": "ord_test"}
    assert context["orderLines"] == sample_order("WEB-7")["orderLines"]
    assert context["addresses"] == sample_order("WEB-7")["addresses"]
    assert context["space"] == {"key": "acme"}
    assert context["flow"] == {"key": "made-to-order", "version": 1}
    assert context["task"] == {
        "key": "task-1",
        "stageKey": "stage-1",
        "attempt": 2,
        "deliveryId": "dlv_test",
    }


async def test_a_template_renders_order_fields_and_line_items() -> None:
    source = (
        "{{ order.thirdPartyOrderId }}: {{ orderLines[0].items[0].data.size }} "
        "for {{ order.data.customerEmail }}"
    )

    assert await render(source, variables(), field="subject") == "WEB-7: M for jo@example.com"


async def test_keys_win_over_dict_methods_in_dot_access() -> None:
    assert await render("{{ orderLines[0].items | length }}", variables(), field="body") == "1"


async def test_an_undefined_value_fails_permanently_naming_it_and_the_field() -> None:
    with pytest.raises(PermanentError) as caught:
        await render("{{ order.data.giftNote }}", variables(), field="body")

    assert caught.value.message == (
        "the body template uses an undefined value: 'dict object' has no attribute 'giftNote'; "
        "fix the order or give the value a fallback, e.g. {{ order.data.note | default('') }}"
    )


async def test_the_default_filter_serves_optional_values() -> None:
    rendered = await render(
        "[{{ order.data.giftNote | default('none') }}]", variables(), field="body"
    )

    assert rendered == "[none]"


async def test_the_sandbox_refuses_reaching_into_python() -> None:
    with pytest.raises(PermanentError, match="the subject template did something unsafe"):
        await render("{{ order.__class__.__mro__ }}", variables(), field="subject")


async def test_html_templates_escape_order_data() -> None:
    order = sample_order(data={"note": "<script>x</script>"})
    context = template_context(make_context(order=order))

    assert await render("<p>{{ order.data.note }}</p>", context, field="html", html=True) == (
        "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    )
    assert await render("{{ order.data.note }}", context, field="body") == "<script>x</script>"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "Order {{ order.thirdPartyOrderId",
            "template syntax error on line 1: unexpected end of template, "
            "expected 'end of print statement'.",
        ),
        (
            "{% for line in orderLines %}{{ line.title }}",
            "template syntax error on line 1: Unexpected end of template. Jinja was looking for "
            "the following tags: 'endfor' or 'else'. The innermost block that needs to be closed "
            "is 'for'.",
        ),
        (
            "{{ order.id | nosuchfilter }}",
            "template syntax error on line 1: No filter named 'nosuchfilter'.",
        ),
        (
            "{{ customer.name }} {{ ordr.id }}",
            "unknown template variable customer, ordr; templates can use order, orderLines, "
            "addresses, space, flow, task (for example {{ order.thirdPartyOrderId }} or "
            "{{ order.data.customerEmail }})",
        ),
    ],
)
def test_mistakes_are_found_before_anything_runs(source: str, message: str) -> None:
    with pytest.raises(ValueError, match="template") as caught:
        check_template(source)

    assert str(caught.value) == message


def test_loop_and_set_variables_are_not_unknown() -> None:
    source = "{% set n = 1 %}{% for line in orderLines %}{{ line.title }}{{ n }}{% endfor %}"

    assert check_template(source) == source


RUNAWAY = [
    ("{{ 'x' * 40000000 }}", "a repeated value would be longer than 1000000 characters"),
    ("{{ ([1] * 100000000) | length }}", "a repeated value would be longer than 1000000"),
    ("{% for i in range(100000) %}{% endfor %}", "range() of more than 10000 items"),
    (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "rendering took longer than 1 s",
    ),
    (
        "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}",
        "the output would be longer than 1000000 characters",
    ),
    ("{{ 'x' | center(100000000) }}", "center() with a width above 1000000"),
    ("{{ 'x'.ljust(100000000) }}", "ljust() with a width above 1000000"),
    ("{{ 'a\nb' | indent(100000000) }}", "indent() with a width above 1000000"),
    ("{{ '%100000000s' % 'x' }}", "a format width above 1000000"),
    ("{{ '%100000000s' | format('x') }}", "a format width above 1000000"),
    ("{{ '{:>100000000}'.format('x') }}", "a format width above 1000000"),
    ("{{ 10 ** 100000000 }}", "an exponent above 1024"),
    ("{% set s = 'x' * 100000 %}{{ s | replace('', '0123456789') }}", "replace()'s result"),
    ("{% set s = 'x' * 100000 %}{{ s.replace('x', 'y' * 20) }}", "replace()'s result"),
    (
        "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
        "a joined value would be longer",
    ),
    ("{% set a = 'x' * 900000 %}{{ a ~ a }}", "a joined value would be longer"),
    ("{% set a = 'x' * 900000 %}{{ a + a }}", "a joined value would be longer"),
    ("{% set a = 'x' * 900000 %}{{ ([a] * 10000) | join }}", "a join would be longer"),
    ("{% set a = 'x' * 900000 %}{{ ''.join([a] * 10000) }}", "a join would be longer"),
]


@pytest.mark.parametrize(("source", "message"), RUNAWAY)
async def test_a_runaway_template_fails_for_good_naming_the_bound(
    source: str, message: str
) -> None:
    check_template(source)  # each is a valid template: only rendering can tell

    with pytest.raises(PermanentError) as caught:
        await render(source, variables(), field="description")

    assert caught.value.message.startswith("the description template went past a limit: ")
    assert message in caught.value.message


async def test_templates_within_the_bounds_render_as_before() -> None:
    source = (
        "{{ order.thirdPartyOrderId ~ '!' }} {% for i in range(3) %}{{ i }}{% endfor %} "
        "{{ ['a', 'b'] | join(', ') }} {{ '%3s' | format('a') }} {{ 'a-b' | replace('-', '+') }} "
        "{{ 'x' | center(5) }} {{ [1, 2] + [3] }} {{ 2 ** 10 }} {{ 'ab' * 2 }} {{ 'n' ~ 1 }}"
    )

    rendered = await render(source, variables(), field="body")

    assert rendered == "WEB-7! 012 a, b   a a+b   x   [1, 2, 3] 1024 abab n1"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ " + "(" * 300 + "1" + ")" * 300 + " }}", "nests 300 brackets deep; templates allow"),
        ("{{ 1" + " + 1" * 300 + " }}", "chains 300 operators or filters"),
        ("{{ 1" + " and 1" * 40 + " }}", "chains 40 operators or filters"),
        ("{{ '" + "x" * 3000 + "' }}", "characters; templates allow at most 2000 in one tag"),
    ],
)
def test_expressions_too_deep_or_long_are_refused_quickly(source: str, message: str) -> None:
    started = time.monotonic()

    with pytest.raises(ValueError, match=re.escape(message)):
        check_template(source)

    assert time.monotonic() - started < 0.5
