"""Tenant queries: create, find by authkey, list, allowed origins, secret rotation, disabling,
the demo tenant, deleting a tenant with all its data.

Secrets are stored encrypted (``vodwatch.keyring``): the queries take the ``SecretBox``
(``Database.secret_box``) and hand out ``Tenant`` records holding the plaintext.
"""

import json
import secrets
from dataclasses import dataclass, field

from sqlalchemy import Connection, RowMapping, delete, func, insert, inspect, select, text, update

from vodwatch.attention import Defaults
from vodwatch.keyring import FORMAT, SecretBox, stored_key_id
from vodwatch.store.schema import metadata, tenants

DEFAULT_COMPLETION_THRESHOLD = 90
_PG_TENANT_CREATION_LOCK = 0x766F6474  # "vodt": advisory lock key (store.migrate has "vodw")


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: int
    name: str
    authkey: str
    secret: str = field(repr=False)
    allowed_origins: tuple[str, ...]
    # The secret before the latest rotation, valid until previous_secret_expires_at_ms.
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at_ms: int | None = None
    disabled_at_ms: int | None = None
    completion_threshold: int = DEFAULT_COMPLETION_THRESHOLD  # percent, for videos without one
    is_demo: bool = False  # loaded by ``vodwatch demo``: its numbers are made up
    max_rate: float | None = None  # completion rules of videos without their own (SPEC §10)
    visible_only: bool = False

    @property
    def defaults(self) -> Defaults:
        """The completion rules of videos without their own."""
        return Defaults(self.completion_threshold, self.max_rate, self.visible_only)

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at_ms is not None

    def valid_secrets(self, now_ms: int) -> tuple[str, ...]:
        """The secrets that sign for this tenant at ``now_ms``: the current one, and the one
        before it while its grace period lasts."""
        previous, expires_at_ms = self.previous_secret, self.previous_secret_expires_at_ms
        if previous is not None and expires_at_ms is not None and now_ms < expires_at_ms:
            return (self.secret, previous)
        return (self.secret,)

    def grace_ends_at_ms(self, now_ms: int) -> int | None:
        """When the previous secret stops signing, if it still does at ``now_ms``."""
        return self.previous_secret_expires_at_ms if len(self.valid_secrets(now_ms)) > 1 else None


def new_authkey() -> str:
    return "tk_" + secrets.token_urlsafe(12)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def create_tenant(
    conn: Connection,
    box: SecretBox,
    name: str,
    now_ms: int,
    *,
    authkey: str | None = None,
    secret: str | None = None,
    is_demo: bool = False,
) -> Tenant:
    """A new tenant; its authkey and secret are generated unless given (tests give them)."""
    authkey = authkey or new_authkey()
    secret = secret or new_secret()
    result = conn.execute(
        insert(tenants)
        .values(
            name=name,
            authkey=authkey,
            secret=box.encrypt(authkey, secret),
            created_at_ms=now_ms,
            is_demo=is_demo,
        )
        .returning(tenants.c.tenant_id)
    )
    return Tenant(result.scalar_one(), name, authkey, secret, (), is_demo=is_demo)


def find_tenant_by_id(conn: Connection, box: SecretBox, tenant_id: int) -> Tenant | None:
    row = conn.execute(select(tenants).where(tenants.c.tenant_id == tenant_id)).one_or_none()
    return None if row is None else _tenant(box, row._mapping)


def find_tenant(conn: Connection, box: SecretBox, authkey: str) -> Tenant | None:
    """The tenant with this authkey, disabled or not; None when there is none."""
    row = conn.execute(select(tenants).where(tenants.c.authkey == authkey)).one_or_none()
    return None if row is None else _tenant(box, row._mapping)


def list_tenants(conn: Connection, box: SecretBox) -> list[Tenant]:
    rows = conn.execute(select(tenants).order_by(tenants.c.tenant_id))
    return [_tenant(box, row._mapping) for row in rows]


def list_enabled_origins(conn: Connection) -> frozenset[str]:
    """The browser origins some enabled tenant allows (no secret is read)."""
    rows = conn.execute(
        select(tenants.c.allowed_origins).where(tenants.c.disabled_at_ms.is_(None))
    ).scalars()
    return frozenset(origin for origins in rows for origin in json.loads(origins))


def count_tenants(conn: Connection, *, include_demo: bool = True) -> int:
    query = select(func.count()).select_from(tenants)
    if not include_demo:
        query = query.where(~tenants.c.is_demo)
    return int(conn.execute(query).scalar_one())


def find_demo_tenant(conn: Connection, box: SecretBox) -> Tenant | None:
    """The tenant ``vodwatch demo`` loaded (the first, should there be several); None when
    there is none."""
    row = conn.execute(
        select(tenants).where(tenants.c.is_demo).order_by(tenants.c.tenant_id).limit(1)
    ).one_or_none()
    return None if row is None else _tenant(box, row._mapping)


def lock_tenant_creation(conn: Connection) -> None:
    """Until this write transaction ends, other transactions that call this wait: a check
    for a tenant and the creation it decides on then happen as one. (On SQLite every write
    transaction holds the database's write lock already.)"""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_TENANT_CREATION_LOCK})


def delete_tenant(conn: Connection, tenant_id: int) -> dict[str, int]:
    """Delete a tenant and every row of it, in every table that has a ``tenant_id`` (those
    that refer to others first); the number of rows deleted per table, ``tenants`` last."""
    deleted = {}
    for table in reversed(metadata.sorted_tables):
        if table is not tenants and "tenant_id" in table.c:
            result = conn.execute(delete(table).where(table.c.tenant_id == tenant_id))
            deleted[table.name] = result.rowcount
    result = conn.execute(delete(tenants).where(tenants.c.tenant_id == tenant_id))
    deleted[tenants.name] = result.rowcount
    return deleted


def set_allowed_origins(conn: Connection, authkey: str, origins: list[str]) -> bool:
    """Replace a tenant's CORS origins; False when the authkey is unknown."""
    result = conn.execute(
        update(tenants)
        .where(tenants.c.authkey == authkey)
        .values(allowed_origins=json.dumps(origins))
    )
    return result.rowcount == 1


def rotate_secret(
    conn: Connection, box: SecretBox, authkey: str, now_ms: int, grace_ms: int
) -> str | None:
    """Give the tenant a new secret and return it (None when the authkey is unknown).

    The secret it had stays valid for ``grace_ms`` more (none when 0) as the previous secret,
    replacing any previous secret still in its grace: only the two latest ever sign.
    """
    secret = new_secret()
    result = conn.execute(
        update(tenants)
        .where(tenants.c.authkey == authkey)
        .values(
            # Right-hand sides read the row as it was: the current secret becomes the previous
            # one, still encrypted (bound to the same authkey, so it decrypts in either column).
            previous_secret=tenants.c.secret if grace_ms > 0 else None,
            previous_secret_expires_at_ms=now_ms + grace_ms if grace_ms > 0 else None,
            secret=box.encrypt(authkey, secret),
        )
    )
    return secret if result.rowcount == 1 else None


def set_disabled(conn: Connection, authkey: str, now_ms: int, *, is_disabled: bool) -> bool:
    """Disable a tenant (from ``now_ms``, or from when it was disabled already) or enable it;
    its data stays. False when the authkey is unknown."""
    disabled_at = func.coalesce(tenants.c.disabled_at_ms, now_ms) if is_disabled else None
    result = conn.execute(
        update(tenants).where(tenants.c.authkey == authkey).values(disabled_at_ms=disabled_at)
    )
    return result.rowcount == 1


def set_completion_threshold(conn: Connection, authkey: str, percent: int) -> bool:
    """Set a tenant's default completion threshold (1..100, checked by the caller); False
    when the authkey is unknown."""
    return set_rules(conn, authkey, {"completion_threshold": percent})


def set_rules(conn: Connection, authkey: str, changes: dict[str, object]) -> bool:
    """Set some of a tenant's default completion rules (``completion_threshold``,
    ``max_rate``, ``visible_only``: checked by the caller); the others are kept. False when
    the authkey is unknown."""
    allowed = {"completion_threshold", "max_rate", "visible_only"}
    if not changes.keys() <= allowed:
        raise ValueError(f"not a rule: {sorted(changes.keys() - allowed)}")
    if changes:
        result = conn.execute(update(tenants).where(tenants.c.authkey == authkey).values(**changes))
        if result.rowcount != 1:
            return False
    return (
        conn.execute(select(tenants.c.tenant_id).where(tenants.c.authkey == authkey)).first()
        is not None
    )


def find_other_key_id(conn: Connection, key_id: str | None) -> str | None:
    """The id of a key other than ``key_id`` (any key when None) that a stored tenant secret
    was encrypted with; None when there is no such secret (plaintext ones do not count)."""
    if not inspect(conn).has_table(tenants.name):
        return None
    query = select(tenants.c.secret).where(tenants.c.secret.like(f"{FORMAT}:%"))
    if key_id is not None:
        query = query.where(tenants.c.secret.not_like(f"{FORMAT}:{key_id}:%"))
    stored = conn.execute(query.limit(1)).scalar_one_or_none()
    return None if stored is None else stored_key_id(stored)


def _tenant(box: SecretBox, mapping: RowMapping) -> Tenant:
    authkey = mapping["authkey"]
    previous = mapping["previous_secret"]
    return Tenant(
        tenant_id=mapping["tenant_id"],
        name=mapping["name"],
        authkey=authkey,
        secret=box.decrypt(authkey, mapping["secret"]),
        allowed_origins=tuple(json.loads(mapping["allowed_origins"])),
        previous_secret=None if previous is None else box.decrypt(authkey, previous),
        previous_secret_expires_at_ms=mapping["previous_secret_expires_at_ms"],
        disabled_at_ms=mapping["disabled_at_ms"],
        completion_threshold=mapping["completion_threshold"],
        is_demo=mapping["is_demo"],
        max_rate=mapping["max_rate"],
        visible_only=bool(mapping["visible_only"]),
    )
