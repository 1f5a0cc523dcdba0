"""Fixtures for the third-party client tests: a real idflow server per database backend.

The `server` fixture starts `$IDFLOW_BIN serve --dev` on two free loopback ports, once per
database backend (SQLite always; PostgreSQL when IDFLOW_TEST_PG_ADMIN_URL names a server on
which a fresh database may be created), waits for `GET /health/alive`, and stops it afterwards.
Tests get clients of the official `ory-kratos-client` SDK through `frontend` and `identity_api`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import ory_kratos_client
import pytest
from ory_kratos_client.api.frontend_api import FrontendApi
from ory_kratos_client.api.identity_api import IdentityApi

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60
# The SDK passes no timeout to urllib3 unless asked, so a hung server would hang the run.
REQUEST_TIMEOUT_S = 60

PG_ADMIN_URL = os.environ.get("IDFLOW_TEST_PG_ADMIN_URL", "").strip()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _idflow_bin() -> Path:
    raw = os.environ.get("IDFLOW_BIN", "target/debug/idflow")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        pytest.fail(
            f"idflow binary not found at {path} (set IDFLOW_BIN or run `cargo build` first)",
            pytrace=False,
        )
    return path


def _psql(url: str, sql: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is not on PATH; it is needed to create the test database", pytrace=False)
    proc = subprocess.run(
        [psql, url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}) running {sql!r}: {proc.stderr.strip()}")


def _with_database(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass
class Server:
    """A running idflow server."""

    database: str
    public_url: str  # no trailing slash, e.g. http://127.0.0.1:40001
    admin_url: str
    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path

    def stderr_tail(self, lines: int = 60) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.stderr_path}: {e}>"
        return "\n".join(text.splitlines()[-lines:])


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _start_server(database: str, db_url: str, workdir: Path, extra_config: str = "") -> Server:
    binary = _idflow_bin()
    public_port = _free_port()
    admin_port = _free_port()
    while admin_port == public_port:
        admin_port = _free_port()
    public_url = f"http://127.0.0.1:{public_port}"
    admin_url = f"http://127.0.0.1:{admin_port}"

    config = workdir / "config.yaml"
    config.write_text(
        "serve:\n"
        "  public:\n"
        f"    base_url: {public_url}/\n"
        "  admin:\n"
        f"    base_url: {admin_url}/\n"
        # Every test logs in from 127.0.0.1: the default per-IP submit limits are off here.
        "limits:\n"
        "  per_ip: {login: 0, registration: 0}\n" + extra_config
    )
    cmd = [
        str(binary),
        "serve",
        "--dev",
        "--database",
        db_url,
        "--public-addr",
        f"127.0.0.1:{public_port}",
        "--admin-addr",
        f"127.0.0.1:{admin_port}",
        "--config",
        str(config),
    ]
    stdout_path = workdir / "server.stdout.log"
    stderr_path = workdir / "server.stderr.log"
    env = dict(os.environ)
    env.setdefault("RUST_BACKTRACE", "1")
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=workdir, env=env
        )
    server = Server(database, public_url, admin_url, proc, stdout_path, stderr_path)

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    public_ready = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"idflow ({database}) exited with code {proc.returncode} during start-up.\n"
                f"command: {' '.join(cmd)}\nstderr:\n{server.stderr_tail(200)}",
                pytrace=False,
            )
        if not public_ready:
            public_ready = _get_status(f"{public_url}/health/alive") == 200
        # The admin listener only has to accept connections; the tests exercise its routes.
        if public_ready and _port_open(admin_port):
            return server
        time.sleep(0.2)

    _stop(proc)
    pytest.fail(
        f"idflow ({database}) did not answer 200 on {public_url}/health/alive (and accept "
        f"connections on {admin_url}) within {STARTUP_TIMEOUT_S} s.\n"
        f"command: {' '.join(cmd)}\nstderr:\n{server.stderr_tail(200)}",
        pytrace=False,
    )
    raise AssertionError("unreachable")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _database_params() -> list:
    params = [pytest.param("sqlite", id="sqlite")]
    if PG_ADMIN_URL:
        params.append(pytest.param("postgres", id="postgres"))
    else:
        params.append(
            pytest.param(
                "postgres",
                id="postgres",
                marks=pytest.mark.skip(reason="IDFLOW_TEST_PG_ADMIN_URL is not set"),
            )
        )
    return params


def _server_fixture(request, tmp_path_factory, extra_config: str = ""):
    database = request.param
    workdir = tmp_path_factory.mktemp(f"idflow-{database}")
    pg_db = None
    if database == "sqlite":
        db_url = f"sqlite://{workdir}/idflow.db?mode=rwc"
    else:
        pg_db = f"idflow_py_{uuid.uuid4().hex[:16]}"
        _psql(PG_ADMIN_URL, f'CREATE DATABASE "{pg_db}"')
        db_url = _with_database(PG_ADMIN_URL, pg_db)

    srv = None
    try:
        srv = _start_server(database, db_url, workdir, extra_config)
        yield srv
        if srv.process.poll() is not None:
            pytest.fail(
                f"idflow ({database}) died during the tests with code {srv.process.returncode}."
                f"\nstderr:\n{srv.stderr_tail(200)}",
                pytrace=False,
            )
    finally:
        if srv is not None:
            _stop(srv.process)
        if pg_db is not None:
            try:
                _psql(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            except Exception as e:  # best effort: the cluster is thrown away anyway
                print(f"warning: could not drop {pg_db}: {e}")


@pytest.fixture(scope="session", params=_database_params())
def server(request, tmp_path_factory):
    """One idflow server per database backend, shared by the tests (they use unique emails)."""
    yield from _server_fixture(request, tmp_path_factory)


# A session counts as privileged for one second only (settings tests of re-authentication).
SHORT_PRIVILEGE_CONFIG = (
    "selfservice:\n"
    "  flows:\n"
    "    settings:\n"
    "      privileged_session_max_age: 1s\n"
)


@pytest.fixture(scope="session", params=_database_params())
def short_privilege_server(request, tmp_path_factory):
    """Like `server`, with `selfservice.flows.settings.privileged_session_max_age: 1s`."""
    yield from _server_fixture(request, tmp_path_factory, SHORT_PRIVILEGE_CONFIG)


class MailSink:
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps every message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list = []
        sink = self

        class _Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
                import email

                msg = email.message_from_bytes(envelope.content)
                sink.messages.append((list(envelope.rcpt_tos), msg))
                return "250 OK"

        self.port = _free_port()
        self._controller = Controller(_Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def plain_bodies_to(self, address: str) -> list[str]:
        """The plain-text bodies of the messages received for `address`, oldest first."""
        out = []
        for rcpts, msg in list(self.messages):
            if address not in rcpts:
                continue
            parts = msg.walk() if msg.is_multipart() else [msg]
            for part in parts:
                if part.get_content_type() == "text/plain":
                    out.append(part.get_payload(decode=True).decode("utf-8", "replace"))
        return out

    def wait_for(self, address: str, count: int, timeout_s: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            bodies = self.plain_bodies_to(address)
            if len(bodies) >= count:
                return bodies
            time.sleep(0.1)
        raise AssertionError(f"expected {count} message(s) for {address}, got {self.plain_bodies_to(address)}")


@pytest.fixture(scope="session")
def mail_sink():
    sink = MailSink()
    yield sink
    sink.stop()


def _mail_config(sink: MailSink) -> str:
    return (
        "courier:\n"
        "  smtp:\n"
        f"    connection_uri: smtp://127.0.0.1:{sink.port}/?disable_starttls=true\n"
        "    from_address: no-reply@idflow.test\n"
        "  worker:\n"
        "    pull_wait: 100ms\n"
        "selfservice:\n"
        "  flows:\n"
        "    recovery:\n"
        "      enabled: true\n"
        "    verification:\n"
        "      enabled: true\n"
    )


@pytest.fixture(scope="session", params=_database_params())
def mail_server(request, tmp_path_factory, mail_sink):
    """Like `server`, with recovery and verification on and mail going to `mail_sink`."""
    yield from _server_fixture(request, tmp_path_factory, _mail_config(mail_sink))


@pytest.fixture
def mail_frontend(mail_server) -> FrontendApi:
    with _api_client(mail_server.public_url) as client:
        yield FrontendApi(client)


@pytest.fixture
def mail_identity_api(mail_server) -> IdentityApi:
    with _api_client(mail_server.admin_url) as client:
        yield IdentityApi(client)


class _TimeoutApiClient(ory_kratos_client.ApiClient):
    """ApiClient whose requests time out instead of waiting forever."""

    def call_api(self, method, url, header_params=None, body=None, post_params=None,
                 _request_timeout=None):
        return super().call_api(
            method, url, header_params, body, post_params,
            _request_timeout if _request_timeout is not None else REQUEST_TIMEOUT_S,
        )


def _api_client(host: str) -> ory_kratos_client.ApiClient:
    return _TimeoutApiClient(ory_kratos_client.Configuration(host=host))


@pytest.fixture
def frontend(server) -> FrontendApi:
    """The SDK's FrontendApi pointed at the public URL."""
    with _api_client(server.public_url) as client:
        yield FrontendApi(client)


@pytest.fixture
def short_privilege_frontend(short_privilege_server) -> FrontendApi:
    """The SDK's FrontendApi pointed at the `short_privilege_server`."""
    with _api_client(short_privilege_server.public_url) as client:
        yield FrontendApi(client)


@pytest.fixture
def identity_api(server) -> IdentityApi:
    """The SDK's IdentityApi pointed at the admin URL."""
    with _api_client(server.admin_url) as client:
        yield IdentityApi(client)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of the server's stderr to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        srv = funcargs.get("server") or funcargs.get("short_privilege_server") or funcargs.get("mail_server")
        if isinstance(srv, Server):
            report.sections.append(
                (f"idflow server stderr ({srv.database}, last lines)", srv.stderr_tail())
            )
