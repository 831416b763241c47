"""The whole exception tree of ordermill.

::

    OrdermillError
    ├── InvalidInput            bad input; carries every Problem found (→ 400)
    │   └── InvalidFlow         a flow definition broke SPEC §2.2 rules
    ├── NotFound                no such space, flow, order, task or token (→ 404)
    ├── Conflict                the request contradicts stored state (→ 409)
    ├── KeyReused               an Idempotency-Key sent again with another request (→ 422)
    ├── Unauthorized            no or unknown API key (→ 401)
    ├── Forbidden               the key may not touch this space (→ 403)
    ├── StorageError            the database failed (→ 500, with a correlation id)
    │   └── DatabaseUnavailable the database cannot be reached right now (→ 503)
    ├── HandlerError            a handler could not do its work
    │   ├── RetryableError      worth another attempt (connection error, 5xx, 429, timeout)
    │   │   └── AttemptTimeout  the attempt ran past the task's timeoutDuration
    │   └── PermanentError      another attempt cannot help (4xx, redirect, refused target)
    │       └── TargetRefused   the network guard refused the connector's address
    ├── ConfigurationError      settings or plug-ins are inconsistent at start-up
    └── ConnectorError          raised by ordermill.connector, the helper for connector authors
        (SignatureError, PayloadError, InvalidSecret, FeedbackError: see that package)

Each class docstring is the default message. Structured context lives in attributes so the
API's single error mapper can turn any of them into an RFC 9457 problem document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by an RFC 6901 JSON pointer."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class OrdermillError(Exception):
    """Something went wrong in ordermill."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip().splitlines()[0]
        super().__init__(self.message)


class InvalidInput(OrdermillError):
    """The input is invalid."""

    def __init__(self, problems: list[Problem], message: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__(message)


class InvalidFlow(InvalidInput):
    """The flow definition is invalid."""


class NotFound(OrdermillError):
    """The requested resource does not exist."""


class Conflict(OrdermillError):
    """The request conflicts with the current state."""


class KeyReused(OrdermillError):
    """This Idempotency-Key was sent before with another request (another route or body)."""


class Unauthorized(OrdermillError):
    """A valid API key is required (Authorization: Bearer <key>)."""


class Forbidden(OrdermillError):
    """This API key may not access this resource."""


class StorageError(OrdermillError):
    """The database failed."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached right now; try again shortly."""


class ConfigurationError(OrdermillError):
    """The configuration is inconsistent."""


class HandlerError(OrdermillError):
    """The handler could not complete its work."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        response_body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response_body = response_body
        self.retry_after = retry_after


class RetryableError(HandlerError):
    """The attempt failed in a way another attempt may fix."""


class AttemptTimeout(RetryableError):
    """The attempt ran past the task's timeoutDuration."""


class PermanentError(HandlerError):
    """The attempt failed in a way no retry can fix."""


class TargetRefused(PermanentError):
    """The connector target is not an allowed network address."""
