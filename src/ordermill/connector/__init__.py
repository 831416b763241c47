"""Helpers for people who write ordermill connectors: verify, parse, send feedback.

A connector is your https endpoint that ordermill POSTs orders to (a ``consume-rest-api``
task). ``verify`` checks the request's Standard Webhooks signature and parses it into typed
models; ``send_feedback`` reports the outcome to the order's ``updateUrl`` later::

    from ordermill.connector import SignatureError, PayloadError, send_feedback, verify

    async def receive(body: bytes, headers: Mapping[str, str]) -> int:
        try:
            request = verify(body, headers, secret=os.environ["CONNECTOR_SECRET"])
        except SignatureError:
            return 401  # not from ordermill: do nothing
        except PayloadError:
            return 400  # from ordermill, but not an order we understand
        if not already_seen(request.delivery_id):  # the same on every retry of this task
            queue(request.order)  # do the work later, answer at once
        return 201

    # later, when the work is done:
    await send_feedback(order.update_url, "success", message="In production", secret=secret)

The exceptions form one small tree under ``ConnectorError`` (drawn in ``errors.py``).
``ordermill connector check URL --secret whsec_…`` tests an endpoint against ordermill's
expectations; docs/connectors-python.md walks through a complete example connector.
"""

from ordermill.connector.errors import (
    ConnectorError,
    FeedbackError,
    FeedbackFailed,
    FeedbackRejected,
    InvalidSecret,
    PayloadError,
    SignatureError,
)
from ordermill.connector.feedback import (
    FeedbackResult,
    FeedbackStatus,
    send_feedback,
    send_feedback_sync,
)
from ordermill.connector.models import (
    Address,
    Asset,
    AssetVersion,
    ConnectorRequest,
    DeliveryContext,
    Item,
    Order,
    OrderLine,
)
from ordermill.connector.request import parse, verify
from ordermill.connector.signature import check_signature, sign_headers

__all__ = [
    "Address",
    "Asset",
    "AssetVersion",
    "ConnectorError",
    "ConnectorRequest",
    "DeliveryContext",
    "FeedbackError",
    "FeedbackFailed",
    "FeedbackRejected",
    "FeedbackResult",
    "FeedbackStatus",
    "InvalidSecret",
    "Item",
    "Order",
    "OrderLine",
    "PayloadError",
    "SignatureError",
    "check_signature",
    "parse",
    "send_feedback",
    "send_feedback_sync",
    "sign_headers",
    "verify",
]
