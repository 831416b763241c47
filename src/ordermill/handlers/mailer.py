"""Sending e-mail: the Mailer protocol and its SMTP implementation (aiosmtplib).

SMTP answers become handler errors here: a 4xx reply or a broken connection is worth another
attempt (``RetryableError``); a 5xx reply is not (``PermanentError``, with the server's words).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from ordermill.errors import AttemptTimeout, PermanentError, RetryableError

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class Sent:
    """The server accepted the message (for some or all recipients)."""

    reply: str  # the server's answer to DATA
    refused: dict[str, str]  # recipients the server refused, with its answer


class Mailer(Protocol):
    """Hands e-mail to a mail server.

    Implementers must guarantee: ``send`` returns only once the server took responsibility for
    the message; it raises ``RetryableError`` (``AttemptTimeout`` after ``time_limit`` seconds)
    when another attempt may succeed, and ``PermanentError`` when none can; no credential ever
    appears in an error message.
    """

    async def send(
        self, message: EmailMessage, recipients: Sequence[str], time_limit: float
    ) -> Sent: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the SMTP server (ORDERMILL_SMTP_*)."""

    host: str | None
    port: int = 587
    username: str | None = None
    password: str | None = None
    security: Security = "starttls"
    ca_file: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class SmtpMailer:
    """One SMTP connection per message: mail is rare next to connector calls."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._ssl: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            if self.config.ca_file is not None:
                context.load_verify_locations(cafile=str(self.config.ca_file))
            self._ssl = context
        return self._ssl

    async def send(
        self, message: EmailMessage, recipients: Sequence[str], time_limit: float
    ) -> Sent:
        config = self.config
        if not config.host:
            raise PermanentError(
                "no SMTP server is configured: set ORDERMILL_SMTP_HOST (and ORDERMILL_SMTP_PORT, "
                "ORDERMILL_SMTP_SECURITY) to send e-mail"
            )
        try:
            async with asyncio.timeout(time_limit):
                refused, reply = await aiosmtplib.send(
                    message,
                    recipients=list(recipients),
                    hostname=config.host,
                    port=config.port,
                    username=config.username,
                    password=config.password,
                    use_tls=config.security == "tls",
                    start_tls=config.security == "starttls",
                    tls_context=self._tls_context() if config.security != "none" else None,
                    timeout=time_limit,
                )
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            raise AttemptTimeout(
                f"the SMTP server {config.address} did not answer within {time_limit:g} s"
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            answers = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            codes = [r.code for r in exc.recipients]
            raise smtp_error(
                min(codes, default=550), f"refused every recipient ({answers})"
            ) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentError(
                f"the SMTP server refused our login ({exc.code} {exc.message}); check "
                "ORDERMILL_SMTP_USERNAME and ORDERMILL_SMTP_PASSWORD",
                status_code=exc.code,
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise smtp_error(exc.code, exc.message) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentError(
                f"the SMTP server {config.address} does not support what we need: {exc.message}; "
                "check ORDERMILL_SMTP_SECURITY (starttls, tls or none)"
            ) from exc
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise RetryableError(
                f"could not talk to the SMTP server {config.address}: {exc}"
            ) from exc
        return Sent(reply, {address: f"{r.code} {r.message}" for address, r in refused.items()})

    async def close(self) -> None:
        """Nothing to release: every message opens and closes its own connection."""


def smtp_error(code: int, text: str) -> PermanentError | RetryableError:
    """A 4xx answer is temporary (retry); anything else is permanent."""
    message = f"the SMTP server answered {code} {text}".strip()
    if 400 <= code < 500:
        return RetryableError(message, status_code=code, response_body=text)
    return PermanentError(message, status_code=code, response_body=text)
