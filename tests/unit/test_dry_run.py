"""The dry run on the in-memory store: exports list their files without fetching, the mails
asking assignees to confirm are rendered, the retries' jitter comes from a named seed, and
connectors get a clearly marked example updateUrl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ordermill.api.schemas import parse_order
from ordermill.config import Settings
from ordermill.dryrun import DryRun, dry_run
from ordermill.flows.validation import parse_flow
from ordermill.handlers.registry import HandlerRegistry, build_registry
from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow

PUBLIC_URL = "https://mill.example.com"


@pytest.fixture
def registry(tmp_path: Path) -> HandlerRegistry:
    return build_registry(Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///:memory:"))


async def simulate(
    registry: HandlerRegistry,
    tasks: list[dict[str, Any]],
    outcomes: dict[str, list[dict[str, Any]]] | None = None,
    seed: int | None = None,
) -> DryRun:
    document = staged_flow(
        "made-to-order", "Made to order", stage_doc("make", [tasks[0]["key"]], tasks)
    )
    flow = parse_flow(document, registry)
    order, _ = parse_order(order_doc("WEB-DRY"))
    return await dry_run(
        flow, order, outcomes or {}, registry, public_url=PUBLIC_URL + "/", seed=seed
    )


async def test_an_export_lists_the_files_it_would_store_and_fetches_nothing(
    registry: HandlerRegistry,
) -> None:
    export = {"key": "package", "handlerKey": "export", "payload": {}, "next": []}

    run = await simulate(registry, [export])

    assert run.status == "SUCCESS"
    assert run.exports == [
        {
            "taskKey": "package",
            "files": [
                {
                    "assetId": "production-sheet",
                    "fileName": "production-sheet.pdf",
                    "contentType": "application/pdf",
                },
                {
                    "assetId": "manifest-json",
                    "fileName": "manifest.json",
                    "contentType": "application/json",
                },
                {"assetId": "manifest-csv", "fileName": "manifest.csv", "contentType": "text/csv"},
                {
                    "assetId": "package",
                    "fileName": "WEB-DRY-package.zip",
                    "contentType": "application/zip",
                },
            ],
            "itemFiles": [
                {
                    "path": "WEB-DRY-1/item-1/model.stl",
                    "itemId": "item-1",
                    "assetId": "model",
                    "from": "https://cdn.example.com/b.stl",
                }
            ],
        }
    ]
    assert [a["outcome"] for a in run.tasks["package"]["attempts"]] == ["succeeded"]


async def test_an_export_of_the_sheet_alone_brings_no_item_files(
    registry: HandlerRegistry,
) -> None:
    export = {"key": "sheet", "handlerKey": "export", "payload": {"formats": ["pdf"]}, "next": []}

    run = await simulate(registry, [export])

    [made] = run.exports
    assert [f["fileName"] for f in made["files"]] == ["production-sheet.pdf"]
    assert made["itemFiles"] == []


async def test_a_confirmation_that_notifies_renders_one_mail_per_assignee_with_example_links(
    registry: HandlerRegistry,
) -> None:
    confirm = {
        "key": "approve",
        "handlerKey": "manual-confirmation",
        "payload": {
            "title": "Print   {{ order.thirdPartyOrderId }}?",
            "description": "For {{ order.data.customerEmail }}",
            "assignees": ["ops@example.com", "lead@example.com"],
            "notify": True,
        },
        "next": [],
    }

    run = await simulate(registry, [confirm])

    assert run.status == "SUCCESS"
    assert [c["title"] for c in run.confirmations] == ["Print WEB-DRY?"]
    assert [(m["to"], m["subject"]) for m in run.emails] == [
        (["ops@example.com"], "Please confirm: Print WEB-DRY?"),
        (["lead@example.com"], "Please confirm: Print WEB-DRY?"),
    ]
    body = run.emails[1]["body"]
    assert body.split("\n\n")[:5] == [
        "Print WEB-DRY?",
        "For jo@example.com",
        "Order WEB-DRY",
        f"Confirm: {PUBLIC_URL}/confirmations/dry-run-example/answer/confirm/1",
        f"Reject: {PUBLIC_URL}/confirmations/dry-run-example/answer/reject/1",
    ]


async def test_a_confirmation_without_notify_sends_no_mail(registry: HandlerRegistry) -> None:
    confirm = {
        "key": "approve",
        "handlerKey": "manual-confirmation",
        "payload": {"title": "Print?", "assignees": ["ops@example.com"]},
        "next": [],
    }

    run = await simulate(registry, [confirm])

    assert (run.status, run.emails) == ("SUCCESS", [])


async def test_the_same_seed_draws_the_same_retry_times_and_the_answer_names_it(
    registry: HandlerRegistry,
) -> None:
    book = rest_task("https://erp.example.com/o", "book", [], retry={"maxAttempts": 4})
    outcomes = {"book": [{"status": 503}, {"status": 503}, {"status": 503}, {"status": 201}]}

    first = await simulate(registry, [book], outcomes, seed=7)
    again = await simulate(registry, [book], outcomes, seed=7)
    other = await simulate(registry, [book], outcomes, seed=8)
    unseeded = await simulate(registry, [book], outcomes)

    def times(run: DryRun) -> list[str]:
        return [a["at"] for a in run.tasks["book"]["attempts"]]

    assert first.status == "SUCCESS"
    assert len(times(first)) == 4
    assert (first.seed, first.wire()["seed"]) == (7, 7)
    assert times(again) == times(first)
    assert times(other) != times(first)
    assert 0 <= unseeded.seed < 2**32
    replayed = await simulate(registry, [book], outcomes, seed=unseeded.seed)
    assert times(replayed) == times(unseeded)


async def test_a_connector_gets_an_example_update_url_from_the_public_url(
    registry: HandlerRegistry,
) -> None:
    book = rest_task("https://erp.example.com/o", "book", [], payload={"sendsFeedback": True})

    run = await simulate(registry, [book])

    expected = f"{PUBLIC_URL}/api/feedback/dry-run-example"
    assert run.update_url == expected
    [request] = run.requests
    assert request["body"]["order"]["updateUrl"] == expected
    assert run.status == "SUCCESS"
