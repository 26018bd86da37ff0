"""Schema versions: upgrade a database to the newest schema, or say why it cannot be used.

Alembic scripts live in ``store/migrations/versions``; they run on the service's own connection,
inside one write transaction, so two processes upgrading at once take turns and a failed
upgrade leaves the previous schema as it was. A script finds the ``SecretBox`` of the database
in ``context.config.attributes["secret_box"]``.
"""

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text

from vodwatch.keyring import SecretBox
from vodwatch.store.database import Database
from vodwatch.store.secret_key import check_secret_key

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_UPGRADE_LOCK = 0x766F6477  # "vodw": one upgrader at a time across processes


class SchemaError(RuntimeError):
    """The database holds a schema this version of vodwatch cannot use."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def _config(conn: Connection | None = None, box: SecretBox | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    config.attributes["secret_box"] = box
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def read_schema_state(db: Database) -> SchemaState:
    """The database's revision next to the newest this code knows."""
    with db.read() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaState(current=current, head=head_revision())


def check_known(state: SchemaState) -> None:
    """Raise ``SchemaError`` for a revision this code does not know (a newer vodwatch's)."""
    if state.current is not None and not _is_known_revision(state.current):
        raise SchemaError(
            f"the database schema is at revision {state.current}, newer than this vodwatch "
            f"knows (newest known: {state.head}); upgrade vodwatch, or use another database"
        )


def _is_known_revision(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(db: Database, revision: str = "head") -> SchemaState:
    """Migrate forward to ``revision``; a no-op when already there. Needs the key of the
    tenant secrets (``KeyringError`` without the right one), which it encrypts if they are
    stored in plaintext still."""
    check_known(read_schema_state(db))
    box = db.secret_box
    with db.write() as conn:
        if not db.is_sqlite:
            # A backfill may take long: the service's statement timeout is for requests.
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_UPGRADE_LOCK})
        command.upgrade(_config(conn, box), revision)
        # Another process may have encrypted the secrets with its own key meanwhile.
        check_secret_key(conn, box)
    return read_schema_state(db)


def require_current(db: Database) -> None:
    """Raise ``SchemaError`` unless the schema is exactly the newest this code knows."""
    state = read_schema_state(db)
    check_known(state)
    if not state.is_current:
        raise SchemaError(
            f"the database schema is at revision {state.current or 'none'}, this vodwatch "
            f"needs {state.head}: run 'vodwatch db upgrade'"
        )
