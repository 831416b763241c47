"""The handler registry: built-ins registered in one place, plug-ins found by entry point.

Third-party packages ship handlers through the ``ordermill.handlers`` entry-point group; each
entry point names a Handler class or factory, called with Settings when its first positional
parameter is required or named ``settings`` and with no arguments otherwise (docs/handlers.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ordermill.config import Settings
from ordermill.errors import ConfigurationError, Problem
from ordermill.flows.model import RetryPolicy, TaskDefinition
from ordermill.handlers.base import Handler
from ordermill.jsoncodec import dumps

if TYPE_CHECKING:
    from ordermill.handlers.mailer import SmtpMailer
    from ordermill.handlers.netguard import OutboundClient

ENTRY_POINT_GROUP = "ordermill.handlers"


def pointer(location: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer for a pydantic error location."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in location]
    return "".join("/" + part for part in parts)


_PLAIN = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be an array",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "url_parsing": "must be a URL",
}


def message_of(error: Mapping[str, Any]) -> str:
    """A pydantic error in the words the flow validator uses."""
    kind, ctx, location = error["type"], error.get("ctx") or {}, error.get("loc") or ()
    if kind == "missing":
        return f"required field {location[-1]!r} is missing" if location else "is required"
    if kind == "extra_forbidden":
        return f"unknown field {location[-1]!r}" if location else "unknown field"
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} entries"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} entries"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


def problems_of(error: ValidationError, prefix: str = "") -> list[Problem]:
    return [
        Problem(prefix + pointer(item["loc"]), message_of(item))
        for item in error.errors(include_url=False)
    ]


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
        """Validate in strict JSON mode: a field has its JSON type (``"yes"`` is no boolean,
        ``"1500"`` no integer), while text still reads as dates and enums as JSON allows."""
        return self._handlers[key].payload_model.model_validate_json(
            dumps(payload), strict=True, context=self.validation_context
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
    from ordermill.handlers.netguard import OutboundClient
    from ordermill.handlers.wait import Wait

    # One guarded client for every request to a tenant-given URL.
    client = OutboundClient(
        ca_file=settings.connector_ca_file, user_agent=settings.connector_user_agent
    )
    return [
        ConsumeRestApi(
            allow_networks=tuple(settings.connector_allow_networks),
            max_per_host=settings.connector_max_per_host,
            client=client,
        ),
        *mail_handlers(settings),
        Wait(),
        export_handler(settings, client),
    ]


def smtp_mailer(settings: Settings) -> SmtpMailer:
    """The mailer of the ORDERMILL_SMTP_* settings (send-email's, and invitations')."""
    from ordermill.handlers.mailer import SmtpConfig, SmtpMailer

    password = settings.smtp_password
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            security=settings.smtp_security,
            ca_file=settings.smtp_ca_file,
        )
    )


def mail_handlers(settings: Settings) -> list[Handler]:
    """send-email and manual-confirmation, sharing one SMTP mailer."""
    from ordermill.handlers.confirmation import ManualConfirmation
    from ordermill.handlers.email import SendEmail

    mailer = smtp_mailer(settings)
    blobs: Any = None

    async def read_blob(key: str) -> bytes:
        nonlocal blobs
        if blobs is None:  # built on first use: most installations never attach exports
            from ordermill.blobs import build_blob_store

            blobs = build_blob_store(settings)
        data: bytes = await blobs.get(key)
        return data

    return [
        SendEmail(mailer, default_from=settings.smtp_from, blob_reader=read_blob),
        ManualConfirmation(mailer, default_from=settings.smtp_from),
    ]


def export_handler(settings: Settings, client: OutboundClient | None = None) -> Handler:
    """export, storing its files in the blob store the settings choose."""
    from ordermill.blobs import build_blob_store
    from ordermill.handlers.export import Export

    return Export(
        build_blob_store(settings),
        public_url=settings.base_url,
        work_dir=settings.data_dir / "tmp",
        allow_networks=tuple(settings.connector_allow_networks),
        allow_http_hosts=tuple(settings.connector_allow_http),
        ca_file=settings.connector_ca_file,
        max_file_bytes=settings.export_max_file_bytes,
        max_order_bytes=settings.export_max_order_bytes,
        user_agent=settings.connector_user_agent,
        client=client,
    )


def plugin_handlers(settings: Settings) -> list[Handler]:
    handlers: list[Handler] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = entry_point.load()
            handler = factory(settings) if takes_settings(factory) else factory()
        except Exception as exc:
            raise ConfigurationError(
                f"the handler plug-in {entry_point.name!r} ({entry_point.value}) "
                f"failed to load: {exc}"
            ) from exc
        missing = [name for name in HANDLER_MEMBERS if not hasattr(handler, name)]
        if missing:
            raise ConfigurationError(
                f"the handler plug-in {entry_point.name!r} ({entry_point.value}) is not a "
                f"handler: it lacks {', '.join(missing)} (see docs/handlers.md)"
            )
        handlers.append(handler)
    return handlers


HANDLER_MEMBERS = ("key", "payload_model", "default_timeout_ms", "default_retry", "run", "close")


def takes_settings(factory: Any) -> bool:
    """Whether a plug-in factory wants Settings: its first positional parameter is required or
    named ``settings``. Deciding up front keeps a TypeError raised inside it from being masked."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # no signature to read (a builtin): call it bare
        return False
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return parameter.default is parameter.empty or parameter.name == "settings"
    return False


def build_registry(settings: Settings, extra: Iterable[Handler] = ()) -> HandlerRegistry:
    """Built-ins, then plug-ins, then ``extra``; a duplicate key is a start-up error."""
    return HandlerRegistry(
        [*builtin_handlers(settings), *plugin_handlers(settings), *extra],
        validation_context={"allow_http_hosts": tuple(settings.connector_allow_http)},
    )
