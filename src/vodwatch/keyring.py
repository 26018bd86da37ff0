"""Tenant secrets at rest: AES-256-GCM under the server's secret key. No I/O.

The service must know each tenant's plaintext secret to check HMAC signatures and playback
tokens, so secrets cannot be hashed; they are encrypted instead, and a copy of the database
alone does not let anyone sign. A stored secret reads ``v1:<key id>:<base64url(nonce +
ciphertext)>``: a random 12-byte nonce per value, the tenant's authkey as associated data (a
value copied into another tenant's row does not decrypt), and the id of the key that wrote it
(a short fingerprint, safe to show) so a server holding another key says so plainly.
"""

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT = "v1"
_KEY_ID_MESSAGE = b"vodwatch tenant secret key id"
_KEY_ID_LENGTH = 8  # hex digits


class KeyringError(Exception):
    """The secret key is missing, malformed or not the one the database was written with,
    or a stored secret does not decrypt. The message never holds a key or a secret."""


class WrongKey(KeyringError):
    """Tenant secrets were encrypted with another key than this server's."""

    def __init__(self, stored_key_id: str, key_id: str | None, hint: str = "") -> None:
        has = f"has key {key_id}" if key_id is not None else f"has no key ({hint})"
        super().__init__(
            f"tenant secrets were encrypted with key {stored_key_id}; this server {has}: "
            "set VODWATCH_SECRET_KEY or --key-file to the key the database was written with"
        )
        self.stored_key_id = stored_key_id


class UndecryptableSecret(KeyringError):
    """A stored secret is not in the stored format, or fails authentication."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    """The text form of a key, as in ``VODWATCH_SECRET_KEY`` and key files: base64url."""
    return base64.urlsafe_b64encode(key).decode("ascii")


def parse_key(text: str, where: str) -> bytes:
    """A key from its text form (surrounding white space ignored, padding optional);
    ``KeyringError`` naming ``where`` it came from unless it is 32 bytes of base64url."""
    stripped = text.strip()
    try:
        key = _base64url_decode(stripped)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyringError(
            f"{where} must hold a key of {KEY_BYTES} bytes in base64url (44 characters), "
            f"e.g. the output of: python3 -c 'import base64, os; "
            f"print(base64.urlsafe_b64encode(os.urandom({KEY_BYTES})).decode())'"
        )
    return key


def key_id_of(key: bytes) -> str:
    """A short fingerprint of ``key``: HMAC-SHA256 of a constant, first 8 hex digits."""
    return hmac.new(key, _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:_KEY_ID_LENGTH]


def is_encrypted(stored: str) -> bool:
    """Whether a stored secret is in the encrypted format (rather than plaintext, as
    vodwatch stored them before schema revision 0004)."""
    return stored.startswith(FORMAT + ":")


def stored_key_id(stored: str) -> str | None:
    """The id of the key a stored secret was encrypted with; None for plaintext."""
    if not is_encrypted(stored):
        return None
    return stored.split(":", 2)[1]


class SecretBox:
    """Encrypts and decrypts tenant secrets with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KeyringError(f"a secret key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self._key = key
        self.key_id = key_id_of(key)

    def derive_key(self, purpose: bytes) -> bytes:
        """A 32-byte key of its own for ``purpose`` (HMAC-SHA256 of it under this key), e.g. to
        sign dashboard sessions: a different purpose never gets the same key, and no derived
        key reveals this one."""
        return hmac.new(self._key, b"vodwatch derived key: " + purpose, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def encrypt(self, authkey: str, secret: str) -> str:
        """``v1:<key id>:<base64url(nonce + ciphertext)>``, bound to ``authkey``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), authkey.encode())
        payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{FORMAT}:{self.key_id}:{payload}"

    def decrypt(self, authkey: str, stored: str) -> str:
        """The plaintext of a value ``encrypt(authkey, ...)`` returned.

        ``WrongKey`` when another key wrote it; ``UndecryptableSecret`` when it is not in
        the format, was altered, or belongs to another authkey.
        """
        parts = stored.split(":", 2)
        if len(parts) != 3 or parts[0] != FORMAT:
            raise UndecryptableSecret(
                f"the stored secret of tenant {authkey} is not in the {FORMAT} format"
            )
        if parts[1] != self.key_id:
            raise WrongKey(parts[1], self.key_id)
        try:
            raw = _base64url_decode(parts[2])
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], authkey.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise UndecryptableSecret(
                f"the stored secret of tenant {authkey} does not decrypt with key "
                f"{self.key_id}: it was altered, or copied from another tenant's row"
            ) from None
        return plain.decode()


def _base64url_decode(text: str) -> bytes:
    """base64url, padded or not; ``binascii.Error`` or ``ValueError`` for anything else."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
