"""Checking Standard Webhooks signatures on requests that connectors send to ordermill."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ordermill.errors import Unauthorized


def verify_signature(raw: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Accept the request when any live secret of the space signed it; raise Unauthorized else.

    The library raises ValueError on a malformed header and checks the timestamp against a
    five-minute tolerance, which protects against replays.
    """
    wanted = {
        name: headers.get(name, "")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    reason = "no signing secret matched"
    for secret in secrets:
        try:
            Webhook(secret).verify(raw, wanted, json_parse=False)
            return
        except WebhookVerificationError as exc:
            reason = str(exc)
        except (ValueError, TypeError):
            reason = "the webhook-signature header is malformed"
    raise Unauthorized(f"the feedback signature is not valid: {reason}")
