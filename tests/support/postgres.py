"""A throwaway PostgreSQL for the test suite: the one named by a URL, or one we start ourselves.

`PostgresServer.from_environment()` uses `ORDERMILL_TEST_POSTGRES_URL` when it is set; otherwise
it finds the server binaries (PATH, then the newest `/usr/lib/postgresql/*/bin`), runs `initdb`
into a fresh temporary directory and starts `postgres` on a free loopback port, tuned for speed
(no fsync). As root, the binaries run as the unprivileged `postgres` user, since `initdb` refuses
to run as root.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Literal, NoReturn

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

URL_ENV = "ORDERMILL_TEST_POSTGRES_URL"
SUPERUSER = "ordermill"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

# fsync and friends off: a test database that loses its data on a power cut costs nothing.
SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)


class PostgresUnavailableError(RuntimeError):
    """Neither a server URL nor usable PostgreSQL server binaries were found."""


class PostgresStartError(RuntimeError):
    """The PostgreSQL binaries were found, but the server did not come up (see the log quoted)."""


def skip_or_fail(exc: PostgresUnavailableError) -> NoReturn:
    """Skip a test that needs PostgreSQL — or fail it in CI (`CI=true`), where it must run."""
    import pytest  # only the fixtures call this; the module itself stays pytest-free

    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI (CI=true): {exc}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {exc}")


def find_pg_bin_dir() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`: PATH first, then Debian's layout."""
    on_path = [shutil.which(name) for name in SERVER_BINARIES]
    if all(on_path):
        return Path(str(on_path[0])).resolve().parent

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bin_dir in candidates:
        if all(os.access(bin_dir / name, os.X_OK) for name in SERVER_BINARIES):
            return bin_dir
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (a small race remains; `launch` retries on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _run_as_prefix(user: str) -> list[str]:
    """The command prefix that runs a binary as `user` (we are root here)."""
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", user, "--"]
    if setpriv := shutil.which("setpriv"):
        entry = pwd.getpwnam(user)
        return [
            setpriv,
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--init-groups",
            "--",
        ]
    raise PostgresUnavailableError(
        "running as root, and neither runuser nor setpriv is available to run PostgreSQL "
        f"as {user!r}"
    )


class PostgresServer:
    """A PostgreSQL server for tests: either external (from a URL) or managed (started by us).

    `url(dbname)` gives SQLAlchemy URLs (`postgresql+psycopg://…`), `conninfo(dbname)` libpq
    strings for psycopg. Only a managed server can be stopped and started again; it keeps its data
    directory and port across `stop()`/`start()`, so a chaos test can take it away mid-run.
    """

    def __init__(self, base_url: URL, *, admin_dbname: str = "postgres") -> None:
        self._base_url = base_url
        self.admin_dbname = admin_dbname
        self.host: str = base_url.host or "127.0.0.1"
        self.port: int = base_url.port or 5432
        self.user: str = base_url.username or SUPERUSER
        self.pg_bin_dir: Path | None = None
        self.root_dir: Path | None = None
        self._run_as: list[str] = []
        self._running = True
        self._closed = False

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        """Wrap an existing server; its URL's database is used for admin statements."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ValueError(f"{URL_ENV} is not a URL: {exc}") from None
        if parsed.get_backend_name() != "postgresql":
            raise ValueError(f"{URL_ENV} is not a postgresql URL: {parsed!r}")
        parsed = parsed.set(drivername="postgresql+psycopg")
        return cls(parsed, admin_dbname=parsed.database or "postgres")

    @classmethod
    def from_environment(cls) -> PostgresServer:
        """The server named by `ORDERMILL_TEST_POSTGRES_URL`, else a freshly launched one."""
        if url := os.environ.get(URL_ENV):
            return cls.from_url(url)
        return cls.launch()

    @classmethod
    def launch(cls, pg_bin_dir: Path | None = None) -> PostgresServer:
        """initdb a temporary cluster and start it on a free loopback port."""
        bin_dir = pg_bin_dir or find_pg_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailableError(
                f"no PostgreSQL server binaries ({', '.join(SERVER_BINARIES)}) on PATH or in "
                f"/usr/lib/postgresql/*/bin, and {URL_ENV} is not set"
            )
        run_as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailableError(
                    "running as root, and there is no 'postgres' system user to run "
                    f"PostgreSQL as (initdb refuses root); set {URL_ENV} instead"
                ) from None
            run_as = _run_as_prefix(owner.pw_name)

        base = URL.create("postgresql+psycopg", username=SUPERUSER, host="127.0.0.1", port=0)
        server = cls(base)
        server.pg_bin_dir = bin_dir
        server._run_as = run_as
        server._running = False
        # /tmp keeps the Unix socket path short and is traversable by the postgres user.
        server.root_dir = Path(tempfile.mkdtemp(prefix="ordermill-pg-", dir="/tmp"))
        server.socket_dir.mkdir()
        if owner is not None:
            for path in (server.root_dir, server.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        atexit.register(server.close)
        try:
            server._initdb()
            server._start_on_free_port()
        except BaseException:
            # Keep the directory (and the log in it) for a post-mortem; the error names it.
            server.close(keep_files=True)
            raise
        return server

    # --- addresses --------------------------------------------------------------------------

    @property
    def managed(self) -> bool:
        """True when this process started the server (and may stop it)."""
        return self.root_dir is not None

    @property
    def data_dir(self) -> Path:
        return self._require_root() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._require_root() / "sock"

    @property
    def log_path(self) -> Path:
        return self._require_root() / "postgres.log"

    @property
    def commands_log_path(self) -> Path:
        return self._require_root() / "commands.log"

    def url(self, dbname: str | None = None) -> str:
        """A SQLAlchemy URL (`postgresql+psycopg://…`) for `dbname` (default: the admin DB)."""
        url = self._base_url.set(
            host=self.host, port=self.port, database=dbname or self.admin_dbname
        )
        return url.render_as_string(hide_password=False)

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string for psycopg."""
        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self._base_url.password or None,
            dbname=dbname or self.admin_dbname,
            connect_timeout=10,
        )

    def connect(self, dbname: str | None = None, *, autocommit: bool = True) -> psycopg.Connection:
        """A psycopg connection (autocommit by default, as admin statements need)."""
        return psycopg.connect(self.conninfo(dbname), autocommit=autocommit)

    # --- databases --------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database (dropping one of that name first); return its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with self.connect() as conn:
            self._drop(conn, name)
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it."""
        with self.connect() as conn:
            self._drop(conn, name)

    @staticmethod
    def _drop(conn: psycopg.Connection, name: str) -> None:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._running

    def stop(self, mode: Literal["fast", "immediate", "smart"] = "fast") -> None:
        """Stop the managed server; clients are disconnected at once either way.

        `fast` (the default) is a clean shutdown: every acknowledged commit survives the restart.
        `immediate` is a crash, and with `synchronous_commit=off` it can lose the commits of the
        last few hundred milliseconds — use it only where that loss is part of the test.
        """
        self._require_root()
        if not self._running:
            return
        self._pg_ctl(
            "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(int(STOP_TIMEOUT))
        )
        self._running = False

    def start(self) -> None:
        """Start the managed server again: same data directory, same port."""
        self._require_root()
        if self._running:
            return
        self._start()

    def restart(self, mode: Literal["fast", "immediate", "smart"] = "fast") -> None:
        """Stop the managed server and start it again on the same port: every client connection
        is cut, as in a database fail-over. See `stop` for the modes."""
        self.stop(mode)
        self.start()

    def close(self, *, keep_files: bool = False) -> None:
        """Stop the managed server and delete its directory. Idempotent; external: no-op."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self.root_dir is None:
            return
        if self._running or (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(PostgresStartError, OSError, subprocess.SubprocessError):
                self._pg_ctl("stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30")
            self._running = False
        if not keep_files:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    def log_tail(self, max_chars: int = 6000) -> str:
        """The end of the server log and of our command log, for failure messages."""
        parts = []
        for path in (self.log_path, self.commands_log_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            parts.append(f"--- {path} ---\n{text[-max_chars:]}")
        return "\n".join(parts) or "(no log written)"

    def __repr__(self) -> str:
        kind = "managed" if self.managed else "external"
        return f"<PostgresServer {kind} {self.host}:{self.port} running={self._running}>"

    # --- internals ----------------------------------------------------------------------------

    def _require_root(self) -> Path:
        if self.root_dir is None:
            raise RuntimeError(
                f"{self!r} was not started by the test suite ({URL_ENV} is set); "
                "it cannot be stopped, started or inspected"
            )
        return self.root_dir

    def _command(self, binary: str, *args: str, timeout: float) -> None:
        assert self.pg_bin_dir is not None
        argv = [*self._run_as, str(self.pg_bin_dir / binary), *args]
        with self.commands_log_path.open("ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            try:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.root_dir,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise PostgresStartError(
                    f"{binary} did not finish within {timeout:.0f} s\n{self.log_tail()}"
                ) from None
        if done.returncode != 0:
            raise PostgresStartError(
                f"{binary} {' '.join(args[:1])} exited with {done.returncode}\n{self.log_tail()}"
            )

    def _pg_ctl(self, *args: str) -> None:
        self._command("pg_ctl", *args, timeout=START_TIMEOUT + 10)

    def _initdb(self) -> None:
        self._command(
            "initdb",
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "--no-sync",
            "-E",
            "UTF8",
            # The C locale matches any encoding, whatever LANG the test process inherited.
            "--no-locale",
            timeout=120,
        )

    def _start_on_free_port(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.port = free_port(self.host)
            try:
                self._start()
            except PostgresStartError:
                lost_race = "could not bind" in self.log_tail() or "in use" in self.log_tail()
                if attempt == attempts or not lost_race:
                    raise
            else:
                return

    def _start(self) -> None:
        options = [
            "-k",
            str(self.socket_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
        ]
        for setting in SERVER_SETTINGS:
            options += ["-c", setting]
        self._pg_ctl(
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-o",
            shlex.join(options),
        )
        self._running = True
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresStartError(
                        f"PostgreSQL on port {self.port} refuses connections: {exc}\n"
                        f"{self.log_tail()}"
                    ) from exc
                # pg_ctl -w already waited for readiness; this covers only a short straggle.
                time.sleep(0.05)
            else:
                return
