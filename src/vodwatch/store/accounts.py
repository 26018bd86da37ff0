"""Dashboard accounts: one per e-mail address, each in one tenant, passwords hashed with argon2id.

E-mail addresses are compared folded to lower case (``Alice@X.org`` and ``alice@x.org`` are one
account). Hashing uses argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes),
about 0.1 s on one core here, which is the point; ``verify_password`` runs the same work for an
unknown address, so the answer time does not tell which addresses exist.
"""

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, insert, select, update

from vodwatch.store.schema import accounts

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this bounds the work one attempt costs
MAX_EMAIL_LENGTH = 254
# Deliberately loose (RFC 5321 allows far more): one "@", something on each side, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

_hasher = PasswordHasher()
# A hash of a password nobody has, verified against when the address is unknown.
_DUMMY_HASH = _hasher.hash("vodwatch: no such account")


class AccountError(ValueError):
    """An e-mail address or a password that cannot be an account's; the message says why."""


@dataclass(frozen=True, slots=True)
class Account:
    email: str
    tenant_id: int
    created_at_ms: int
    # Signed sessions carry it: a session from before the latest password change is void.
    password_changed_at_ms: int


def normalize_email(email: str) -> str:
    """``email`` stripped and folded to lower case; ``AccountError`` unless it looks like one."""
    folded = email.strip().lower()
    if len(folded) > MAX_EMAIL_LENGTH or _EMAIL.fullmatch(folded) is None:
        raise AccountError(f"{email!r} is not an e-mail address (name@example.org)")
    return folded


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def create_account(
    conn: Connection, tenant_id: int, email: str, password: str, now_ms: int
) -> Account:
    """A new account; ``AccountError`` when the address is taken or either value is invalid."""
    email = normalize_email(email)
    password_hash = hash_password(password)
    if find_account(conn, email) is not None:
        raise AccountError(f"an account for {email} exists already")
    conn.execute(
        insert(accounts).values(
            email=email,
            tenant_id=tenant_id,
            password_hash=password_hash,
            created_at_ms=now_ms,
            password_changed_at_ms=now_ms,
        )
    )
    return Account(email, tenant_id, now_ms, now_ms)


def set_password(conn: Connection, email: str, password: str, now_ms: int) -> bool:
    """Replace an account's password (signing out its sessions); False when there is none."""
    password_hash = hash_password(password)
    result = conn.execute(
        update(accounts)
        .where(accounts.c.email == normalize_email(email))
        .values(password_hash=password_hash, password_changed_at_ms=now_ms)
    )
    return result.rowcount == 1


def delete_account(conn: Connection, email: str) -> bool:
    result = conn.execute(delete(accounts).where(accounts.c.email == normalize_email(email)))
    return result.rowcount == 1


def delete_tenant_accounts(conn: Connection, tenant_id: int) -> int:
    return conn.execute(delete(accounts).where(accounts.c.tenant_id == tenant_id)).rowcount


def find_account(conn: Connection, email: str) -> Account | None:
    try:
        email = normalize_email(email)
    except AccountError:
        return None
    row = conn.execute(
        select(
            accounts.c.email,
            accounts.c.tenant_id,
            accounts.c.created_at_ms,
            accounts.c.password_changed_at_ms,
        ).where(accounts.c.email == email)
    ).one_or_none()
    return None if row is None else Account(*row)


def list_accounts(conn: Connection, tenant_id: int | None = None) -> list[Account]:
    query = select(
        accounts.c.email,
        accounts.c.tenant_id,
        accounts.c.created_at_ms,
        accounts.c.password_changed_at_ms,
    ).order_by(accounts.c.tenant_id, accounts.c.email)
    if tenant_id is not None:
        query = query.where(accounts.c.tenant_id == tenant_id)
    return [Account(*row) for row in conn.execute(query)]


def verify_password(conn: Connection, email: str, password: str) -> Account | None:
    """The account when ``password`` is its password, else None (wrong password, unknown or
    malformed address: the same answer after the same work)."""
    row = None
    try:
        folded = normalize_email(email)
    except AccountError:
        folded = None
    if folded is not None:
        row = conn.execute(select(accounts).where(accounts.c.email == folded)).one_or_none()
    stored = _DUMMY_HASH if row is None else row.password_hash
    try:
        _hasher.verify(stored, password[:MAX_PASSWORD_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    return Account(row.email, row.tenant_id, row.created_at_ms, row.password_changed_at_ms)
