"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 with STARTTLS and scriptable replies.

`SmtpServer.script("451 4.3.0 Try again later")` makes the next message fail temporarily (a 5xx
reply fails it permanently); messages after the scripted ones are accepted with 250.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.receiver import LocalCA

ACCEPTED = "250 2.0.0 OK: queued"


@dataclass(frozen=True)
class ReceivedMail:
    """One DATA transaction: what the client sent and what we answered."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # the message exactly as transmitted (after dot-unstuffing)
    message: EmailMessage
    tls: bool  # the session had switched to TLS (STARTTLS) before sending
    login: str | None  # the AUTH user, if the client authenticated
    reply: str  # our answer to DATA
    received_at: float  # time.monotonic()

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("2")


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode()
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        # Parsed with plain newlines, as Python's email package expects; `data` keeps the CRLFs.
        parsed = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
        message = cast(EmailMessage, parsed)
        return self._server._record(  # the handler is the server's own part
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=data,
            message=message,
            tls=session.ssl is not None,
            login=login,
        )


class _Controller(Controller):
    """aiosmtpd's Controller on a socket we bound ourselves, so port 0 works without a race."""

    def __init__(self, handler: _Handler, sock: socket.socket, **smtp_kwargs: Any) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **smtp_kwargs)
        self._sock = sock

    def _create_server(self) -> Awaitable[Any]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class SmtpServer:
    """An SMTP server on 127.0.0.1 offering STARTTLS (required by default), optionally AUTH."""

    def __init__(
        self,
        ca: LocalCA,
        *,
        require_starttls: bool = True,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.ca = ca
        self.host = "127.0.0.1"
        self.port = 0
        self.require_starttls = require_starttls
        self.credentials = credentials
        self._cond = threading.Condition()
        self._attempts: list[ReceivedMail] = []
        self._scripted: list[str] = []
        self._controller: _Controller | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the server's certificate (for STARTTLS)."""
        return self.ca.ssl_context()

    # --- programming and inspecting -------------------------------------------------------------

    def script(self, reply: str, count: int = 1) -> None:
        """Answer the next `count` messages with `reply` (e.g. "451 4.3.0 Try again later")."""
        if reply[:1] not in ("4", "5"):
            raise ValueError(f"script a 4xx or 5xx reply, not {reply!r}")
        with self._cond:
            self._scripted.extend([reply] * count)

    @property
    def messages(self) -> list[ReceivedMail]:
        """The accepted messages."""
        with self._cond:
            return [mail for mail in self._attempts if mail.accepted]

    @property
    def attempts(self) -> list[ReceivedMail]:
        """Every DATA transaction, rejected ones included."""
        with self._cond:
            return list(self._attempts)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until `count` messages were accepted; return them."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: sum(m.accepted for m in self._attempts) >= count, timeout=timeout
            ):
                raise TimeoutError(
                    f"{sum(m.accepted for m in self._attempts)} of {count} messages accepted "
                    f"within {timeout} s ({len(self._attempts)} attempts)"
                )
            return [mail for mail in self._attempts if mail.accepted]

    def clear(self) -> None:
        with self._cond:
            self._attempts.clear()
            self._scripted.clear()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SmtpServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.host, 0))
            self.port = int(sock.getsockname()[1])
            kwargs: dict[str, Any] = {
                "tls_context": self.ca.server_ssl_context(),
                "require_starttls": self.require_starttls,
                # A fixed name: the default asks DNS for our FQDN, which can be slow.
                "server_hostname": "ordermill-test-smtp",
                "ready_timeout": 10.0,
            }
            if self.credentials is not None:
                kwargs.update(authenticator=self._authenticate, auth_required=True)
            self._controller = _Controller(_Handler(self), sock, **kwargs)
            self._controller.start()
        except BaseException:
            sock.close()
            if self._controller is not None:
                self._controller.loop.close()
            raise
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- internals ------------------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        user, password = self.credentials
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if not ok:
            # handled=False makes aiosmtpd answer 535 itself; its default leaves the client hanging.
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data.login)

    def _record(self, **fields: Any) -> str:
        with self._cond:
            reply = self._scripted.pop(0) if self._scripted else ACCEPTED
            self._attempts.append(ReceivedMail(**fields, reply=reply, received_at=time.monotonic()))
            self._cond.notify_all()
            return reply
