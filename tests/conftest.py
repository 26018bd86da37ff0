"""Fixtures: a fresh database per test on each backend, the app in-process, a signed client.

Storage tests take the ``database_url`` fixture (directly or through ``db``/``client``) and so
run once on SQLite and once on PostgreSQL. PostgreSQL is the server named by
``VODWATCH_TEST_POSTGRES_URL`` (``.ci/run`` sets it); each test gets its own schema there.

The key of the tenant secrets comes from ``VODWATCH_SECRET_KEY``, set here once for the whole
run, so in-process tests and the servers and commands they start agree on it; the tests of
key files unset it.
"""

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from tests.servers import Server
from vodwatch.api.app import create_app
from vodwatch.client import VodwatchClient
from vodwatch.keyring import encode_key, new_key
from vodwatch.settings import KEY_FILE_ENV, SECRET_KEY_ENV
from vodwatch.store.database import Database, normalize_url
from vodwatch.store.migrate import upgrade
from vodwatch.store.tenants import Tenant, create_tenant

TEST_SECRET_KEY = encode_key(new_key())
os.environ[SECRET_KEY_ENV] = TEST_SECRET_KEY
os.environ.pop(KEY_FILE_ENV, None)

POSTGRES_ENV = "VODWATCH_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_ENV, "")
SKIP_POSTGRES = (
    f"PostgreSQL tests need a server: set {POSTGRES_ENV}, e.g. "
    "postgresql://postgres@127.0.0.1:5432/test (.ci/run does)"
)
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[pytest.mark.postgres, pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)],
    ),
]


class FakeClock:
    """Unix seconds that tests move by hand; starts at the real time."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def postgres_schema_url(schema: str) -> str:
    """The test server's URL with ``schema`` first on the search path."""
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema},public"


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``backend``, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'vodwatch.db'}"
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # Extensions live in public, shared by every test schema (dropping a test schema must
        # not drop them); the migrations' CREATE EXTENSION IF NOT EXISTS then finds them.
        for extension in ("pg_trgm", "btree_gin"):
            conn.execute(text(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public"))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend: the test runs once per backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty PostgreSQL database, for what only PostgreSQL has."""
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def add_tenant(db: Database, name: str = "acme") -> Tenant:
    with db.write() as conn:
        return create_tenant(conn, db.secret_box, name, int(time.time() * 1000))


@pytest.fixture
def tenant(db: Database) -> Tenant:
    return add_tenant(db)


@pytest.fixture
def http(db: Database, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(db, clock=clock)) as test_client:
        yield test_client


def client_for(http: TestClient, tenant: Tenant, clock: FakeClock) -> VodwatchClient:
    return VodwatchClient(
        "http://testserver",
        tenant.authkey,
        tenant.secret,
        http=http,
        clock=clock,
        sleep=clock.advance,
    )


@pytest.fixture
def client(http: TestClient, tenant: Tenant, clock: FakeClock) -> VodwatchClient:
    return client_for(http, tenant, clock)


@pytest.fixture
def servers(database_url: str, db: Database, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start real ``vodwatch serve`` processes on the test's database (migrated by ``db``);
    stopped when the test ends."""
    started: list[Server] = []

    def start(workers: int = 1) -> Server:
        server = Server(database_url, tmp_path, workers=workers).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
