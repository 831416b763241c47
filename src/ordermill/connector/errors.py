"""What the connector helper raises, in one small tree under ``OrdermillError``.

::

    ConnectorError           something went wrong in ordermill.connector
    ├── InvalidSecret        a secret is not a Standard Webhooks ``whsec_…`` key (your config)
    ├── SignatureError       the request is not provably from ordermill (→ answer 401)
    ├── PayloadError         signed, but not the documented order shape (→ answer 400)
    └── FeedbackError        feedback could not be delivered
        ├── FeedbackRejected ordermill answered 400, 404 or 409; resending cannot help
        └── FeedbackFailed   retries ran out (connection errors, 5xx, 429)
"""

from __future__ import annotations

from ordermill.errors import OrdermillError


class ConnectorError(OrdermillError):
    """Something went wrong in the connector helper."""


class InvalidSecret(ConnectorError):
    """The secret is not a Standard Webhooks secret ("whsec_" followed by base64)."""


class SignatureError(ConnectorError):
    """The request's Standard Webhooks signature is missing, malformed, wrong or stale.

    Answer 401 (or 400). Do not act on the body: anyone could have sent it.
    """


class PayloadError(ConnectorError):
    """The request is genuine but its body is not the documented order shape.

    Answer 400; ordermill records the answer and does not retry.
    """


class FeedbackError(ConnectorError):
    """The feedback could not be delivered."""


class FeedbackRejected(FeedbackError):
    """ordermill refused the feedback; sending it again cannot help.

    ``status`` is 400 (malformed feedback), 404 (unknown updateUrl token) or 409 (the task
    already ended with a different outcome); ``body`` is ordermill's answer (problem+json).
    """

    def __init__(self, status: int, body: str, message: str | None = None) -> None:
        self.status = status
        self.body = body
        super().__init__(message or f"ordermill rejected the feedback with {status}: {body[:500]}")


class FeedbackFailed(FeedbackError):
    """Every attempt failed with a connection error, a timeout, 429 or 5xx.

    ``attempts`` is how many were made; ``status`` the last HTTP status (None when the last
    attempt never got an answer).
    """

    def __init__(self, message: str, *, attempts: int, status: int | None) -> None:
        self.attempts = attempts
        self.status = status
        super().__init__(message)
