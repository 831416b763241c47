"""Payload templates: checked when the flow is saved, rendered sandboxed over the order."""

from __future__ import annotations

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


def test_a_template_renders_order_fields_and_line_items() -> None:
    source = (
        "{{ order.thirdPartyOrderId }}: {{ orderLines[0].items[0].data.size }} "
        "for {{ order.data.customerEmail }}"
    )

    assert render(source, variables(), field="subject") == "WEB-7: M for jo@example.com"


def test_keys_win_over_dict_methods_in_dot_access() -> None:
    assert render("{{ orderLines[0].items | length }}", variables(), field="body") == "1"


def test_an_undefined_value_fails_permanently_naming_it_and_the_field() -> None:
    with pytest.raises(PermanentError) as caught:
        render("{{ order.data.giftNote }}", variables(), field="body")

    assert caught.value.message == (
        "the body template uses an undefined value: 'dict object' has no attribute 'giftNote'; "
        "fix the order or give the value a fallback, e.g. {{ order.data.note | default('') }}"
    )


def test_the_default_filter_serves_optional_values() -> None:
    rendered = render("[{{ order.data.giftNote | default('none') }}]", variables(), field="body")

    assert rendered == "[none]"


def test_the_sandbox_refuses_reaching_into_python() -> None:
    with pytest.raises(PermanentError, match="the subject template did something unsafe"):
        render("{{ order.__class__.__mro__ }}", variables(), field="subject")


def test_html_templates_escape_order_data() -> None:
    order = sample_order(data={"note": "<script>x</script>"})
    context = template_context(make_context(order=order))

    assert render("<p>{{ order.data.note }}</p>", context, field="html", html=True) == (
        "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    )
    assert render("{{ order.data.note }}", context, field="body") == "<script>x</script>"


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
