"""Tenant queries: create, find by authkey, list, allowed origins."""

import json
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, RowMapping, func, insert, select, update

from vodwatch.store.schema import tenants


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: int
    name: str
    authkey: str
    secret: str
    allowed_origins: tuple[str, ...]


def new_authkey() -> str:
    return "tk_" + secrets.token_urlsafe(12)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def create_tenant(
    conn: Connection,
    name: str,
    now_ms: int,
    *,
    authkey: str | None = None,
    secret: str | None = None,
) -> Tenant:
    """A new tenant; its authkey and secret are generated unless given (tests give them)."""
    authkey = authkey or new_authkey()
    secret = secret or new_secret()
    result = conn.execute(
        insert(tenants)
        .values(name=name, authkey=authkey, secret=secret, created_at_ms=now_ms)
        .returning(tenants.c.tenant_id)
    )
    return Tenant(result.scalar_one(), name, authkey, secret, ())


def find_tenant(conn: Connection, authkey: str) -> Tenant | None:
    row = conn.execute(select(tenants).where(tenants.c.authkey == authkey)).one_or_none()
    return None if row is None else _tenant(row._mapping)


def list_tenants(conn: Connection) -> list[Tenant]:
    rows = conn.execute(select(tenants).order_by(tenants.c.tenant_id))
    return [_tenant(row._mapping) for row in rows]


def count_tenants(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(tenants)).scalar_one())


def set_allowed_origins(conn: Connection, authkey: str, origins: list[str]) -> bool:
    """Replace a tenant's CORS origins; False when the authkey is unknown."""
    result = conn.execute(
        update(tenants)
        .where(tenants.c.authkey == authkey)
        .values(allowed_origins=json.dumps(origins))
    )
    return result.rowcount == 1


def _tenant(mapping: RowMapping) -> Tenant:
    return Tenant(
        tenant_id=mapping["tenant_id"],
        name=mapping["name"],
        authkey=mapping["authkey"],
        secret=mapping["secret"],
        allowed_origins=tuple(json.loads(mapping["allowed_origins"])),
    )
