"""The handler registry: built-ins registered in one place, plug-ins found by entry point.

Third-party packages ship handlers through the ``ordermill.handlers`` entry-point group; each
entry point names a Handler class (constructed with no arguments) or a factory taking Settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from ordermill.config import Settings
from ordermill.errors import ConfigurationError, Problem
from ordermill.flows.model import RetryPolicy, TaskDefinition
from ordermill.handlers.base import Handler

ENTRY_POINT_GROUP = "ordermill.handlers"


def pointer(location: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer for a pydantic error location."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in location]
    return "".join("/" + part for part in parts)


def problems_of(error: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = f"unknown field {item['loc'][-1]!r}"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(Problem(prefix + pointer(item["loc"]), message))
    return problems


class HandlerRegistry:
    """All handlers by key. Implements the flow validator's HandlerCatalog."""

    def __init__(
        self, handlers: Iterable[Handler], *, validation_context: dict[str, Any] | None = None
    ) -> None:
        self._handlers: dict[str, Handler] = {}
        for handler in handlers:
            self.register(handler)
        self.validation_context = dict(validation_context or {})

    def register(self, handler: Handler) -> None:
        if handler.key in self._handlers:
            raise ConfigurationError(
                f"two handlers are registered under {handler.key!r}: "
                f"{type(self._handlers[handler.key]).__qualname__} and {type(handler).__qualname__}"
            )
        self._handlers[handler.key] = handler

    def get(self, key: str) -> Handler:
        return self._handlers[key]

    def has_handler(self, key: str) -> bool:
        return key in self._handlers

    def handler_keys(self) -> list[str]:
        return sorted(self._handlers)

    def with_context(self, **context: Any) -> HandlerRegistry:
        """The same handlers, validating payloads with extra context (a space's allowances)."""
        view = HandlerRegistry((), validation_context={**self.validation_context, **context})
        view._handlers = self._handlers
        return view

    def validate_payload(self, key: str, payload: object) -> list[Problem]:
        try:
            self.parse_payload(key, payload)
        except ValidationError as exc:
            return problems_of(exc)
        return []

    def parse_payload(self, key: str, payload: object) -> BaseModel:
        return self._handlers[key].payload_model.model_validate(
            payload, context=self.validation_context
        )

    def timeout_ms(self, definition: TaskDefinition) -> int:
        if definition.timeout_ms is not None:
            return definition.timeout_ms
        return self._handlers[definition.handler_key].default_timeout_ms

    def retry_policy(self, definition: TaskDefinition) -> RetryPolicy:
        if definition.retry is not None:
            return definition.retry
        return self._handlers[definition.handler_key].default_retry

    def schemas(self) -> dict[str, dict[str, Any]]:
        return {
            key: handler.payload_model.model_json_schema(by_alias=True)
            for key, handler in sorted(self._handlers.items())
        }

    async def close(self) -> None:
        for handler in self._handlers.values():
            await handler.close()


def builtin_handlers(settings: Settings) -> list[Handler]:
    from ordermill.handlers.connector import ConsumeRestApi

    return [
        ConsumeRestApi(
            allow_networks=tuple(settings.connector_allow_networks),
            ca_file=settings.connector_ca_file,
            max_per_host=settings.connector_max_per_host,
            user_agent=settings.connector_user_agent,
        )
    ]


def plugin_handlers(settings: Settings) -> list[Handler]:
    handlers: list[Handler] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = entry_point.load()
            try:
                handler = factory(settings)
            except TypeError:
                handler = factory()
        except Exception as exc:
            raise ConfigurationError(
                f"the handler plug-in {entry_point.name!r} ({entry_point.value}) "
                f"failed to load: {exc}"
            ) from exc
        handlers.append(handler)
    return handlers


def build_registry(settings: Settings, extra: Iterable[Handler] = ()) -> HandlerRegistry:
    """Built-ins, then plug-ins, then ``extra``; a duplicate key is a start-up error."""
    return HandlerRegistry(
        [*builtin_handlers(settings), *plugin_handlers(settings), *extra],
        validation_context={"allow_http_hosts": tuple(settings.connector_allow_http)},
    )
