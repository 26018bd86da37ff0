"""Tenant secrets at rest (pure): the stored format, the authkey binding, the key id."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vodwatch.keyring import (
    KeyringError,
    SecretBox,
    UndecryptableSecret,
    WrongKey,
    encode_key,
    is_encrypted,
    new_key,
    parse_key,
    stored_key_id,
)

KEY = bytes(range(32))
BOX = SecretBox(KEY)


@given(authkey=st.text(min_size=1, max_size=64), secret=st.text(max_size=200))
def test_round_trip(authkey: str, secret: str):
    stored = BOX.encrypt(authkey, secret)
    assert BOX.decrypt(authkey, stored) == secret
    assert stored.startswith(f"v1:{BOX.key_id}:")
    assert is_encrypted(stored)
    assert stored_key_id(stored) == BOX.key_id


def test_the_stored_value_is_not_the_secret_and_each_is_new():
    secret = "a-tenant-secret-a-tenant-secret-a-tenant-secret"
    first, second = BOX.encrypt("tk_a", secret), BOX.encrypt("tk_a", secret)
    assert first != second  # a random nonce per value
    for stored in (first, second):
        assert secret not in stored
        payload = stored.split(":", 2)[2]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert secret.encode() not in raw
        assert len(raw) == 12 + len(secret) + 16  # nonce, ciphertext, tag


def test_a_value_moved_to_another_tenant_does_not_decrypt():
    stored = BOX.encrypt("tk_a", "the secret of tenant a")
    with pytest.raises(UndecryptableSecret, match="tk_b does not decrypt") as raised:
        BOX.decrypt("tk_b", stored)
    assert "the secret of tenant a" not in str(raised.value)


@pytest.mark.parametrize("position", [0, 11, 12, -1])  # nonce, ciphertext, tag
def test_an_altered_value_does_not_decrypt(position: int):
    stored = BOX.encrypt("tk_a", "the secret of tenant a")
    head, payload = stored.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[position] ^= 1
    altered = f"{head}:{base64.urlsafe_b64encode(raw).decode()}"
    with pytest.raises(UndecryptableSecret, match="altered"):
        BOX.decrypt("tk_a", altered)


def test_plaintext_is_not_taken_for_a_stored_secret():
    assert not is_encrypted("s3cr3t-demo-secret")
    assert stored_key_id("s3cr3t-demo-secret") is None
    with pytest.raises(UndecryptableSecret, match="not in the v1 format"):
        BOX.decrypt("tk_a", "s3cr3t-demo-secret")


def test_another_key_is_named_in_a_clear_error():
    other = SecretBox(new_key())
    stored = other.encrypt("tk_a", "secret")
    with pytest.raises(WrongKey) as raised:
        BOX.decrypt("tk_a", stored)
    assert str(raised.value) == (
        f"tenant secrets were encrypted with key {other.key_id}; this server has key "
        f"{BOX.key_id}: set VODWATCH_SECRET_KEY or --key-file to the key the database was "
        "written with"
    )


def test_key_id_is_a_short_fingerprint_and_repr_hides_the_key():
    assert len(BOX.key_id) == 8
    assert int(BOX.key_id, 16) >= 0
    assert SecretBox(KEY).key_id == BOX.key_id
    assert SecretBox(new_key()).key_id != BOX.key_id
    assert repr(BOX) == f"SecretBox(key_id={BOX.key_id!r})"
    assert encode_key(KEY) not in repr(BOX)
    assert BOX.key_id not in encode_key(KEY)


def test_key_text_form():
    key = new_key()
    text = encode_key(key)
    assert len(text) == 44
    for spelling in (text, text.rstrip("="), f"  {text}\n"):
        assert parse_key(spelling, "VODWATCH_SECRET_KEY") == key
    for bad in ("", "short", encode_key(key[:16]), text[:-4] + "!!!!", "é" * 44):
        with pytest.raises(KeyringError, match="VODWATCH_SECRET_KEY must hold a key of 32"):
            parse_key(bad, "VODWATCH_SECRET_KEY")
    with pytest.raises(KeyringError, match="32 bytes"):
        SecretBox(b"too short")
