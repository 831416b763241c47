"""Plug-ins: handlers found through the ``ordermill.handlers`` entry-point group, built-ins in one
place, and a clear start-up error for a duplicate key or something that is not a handler."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from ordermill.config import Settings
from ordermill.errors import ConfigurationError
from ordermill.handlers import registry as registry_module
from ordermill.handlers.base import Succeeded
from ordermill.handlers.registry import ENTRY_POINT_GROUP, build_registry, takes_settings
from ordermill.testing import RecordingHandler, make_context, sample_order

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ordermill-slicer" / "src"


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    """Make the registry see ``name=module:attr`` entry points instead of installed ones."""
    found = [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in targets.items()]

    def entry_points(*, group: str) -> list[EntryPoint]:
        return found if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry_module, "entry_points", entry_points)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///:memory:")


def test_the_builtin_handlers_are_registered_in_one_place(settings: Settings) -> None:
    registry = build_registry(settings)

    assert {"consume-rest-api", "send-email", "manual-confirmation", "wait"} <= set(
        registry.handler_keys()
    )


async def test_the_example_plug_in_is_discovered_through_its_entry_point(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    fake_entry_points(monkeypatch, **{"slicer-estimate": "ordermill_slicer:PrintTimeEstimate"})

    registry = build_registry(settings)

    handler = registry.get("slicer-estimate")
    assert type(handler).__module__ == "ordermill_slicer"
    assert registry.schemas()["slicer-estimate"]["properties"]["minutesPerCm3"]["default"] == 12.0
    order = sample_order()
    order["orderLines"][0]["items"][0]["data"] = {"volumeCm3": 1}
    outcome = await handler.run(make_context(handler, {"setupMinutes": 0}, order=order))
    assert outcome == Succeeded(
        {"printMinutes": 24.0, "items": [{"itemId": "item-1", "minutes": 24.0}]}
    )


def test_a_duplicate_key_is_a_start_up_error(settings: Settings) -> None:
    class Impostor(RecordingHandler):
        key = "wait"

    with pytest.raises(ConfigurationError) as caught:
        build_registry(settings, extra=[Impostor()])

    assert caught.value.message == (
        "two handlers are registered under 'wait': Wait and "
        "test_a_duplicate_key_is_a_start_up_error.<locals>.Impostor"
    )


def test_a_plug_in_that_is_not_a_handler_is_a_start_up_error(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    fake_entry_points(monkeypatch, broken="collections:OrderedDict")

    with pytest.raises(ConfigurationError) as caught:
        build_registry(settings)

    assert caught.value.message == (
        "the handler plug-in 'broken' (collections:OrderedDict) is not a handler: it lacks key, "
        "payload_model, default_timeout_ms, default_retry, run, close (see docs/handlers.md)"
    )


def test_a_plug_in_that_cannot_be_imported_names_the_entry_point(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    fake_entry_points(monkeypatch, gone="ordermill_no_such_plugin:Handler")

    with pytest.raises(ConfigurationError, match="the handler plug-in 'gone'"):
        build_registry(settings)


class NeedsSettings:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class OptionalFirst:
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout


def factory(settings: Any = None) -> None:
    """A factory whose first parameter is named ``settings`` gets them, default or not."""


def keyword_only(*, verbose: bool = False) -> None:
    """Nothing positional: called bare."""


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (NeedsSettings, True),
        (OptionalFirst, False),
        (RecordingHandler, False),
        (factory, True),
        (keyword_only, False),
        (lambda *args: None, True),
        (dict, False),
    ],
)
def test_settings_are_passed_by_signature_not_by_trial(target: Any, expected: bool) -> None:
    assert takes_settings(target) is expected


def test_a_type_error_inside_a_plug_in_is_reported_not_retried(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    fake_entry_points(monkeypatch, strict="tests.unit.test_handlers_plugins:exploding_factory")

    with pytest.raises(ConfigurationError) as caught:
        build_registry(settings)

    assert caught.value.message.endswith("failed to load: the factory itself is broken")


def exploding_factory(settings: Settings) -> Any:
    raise TypeError("the factory itself is broken")
