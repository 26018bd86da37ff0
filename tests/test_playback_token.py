"""Playback tokens: what the service accepts from a browser, and the forgeries it refuses."""

import jwt
import pytest

from vodwatch.errors import InvalidCredentials, MissingAuth
from vodwatch.playback_token import mint_playback_token, verify_playback_token

SECRET = "a-tenant-secret-that-is-long-enough-for-hs256"
NOW = 1_764_072_000


def secret_for(authkey: str) -> str | None:
    return SECRET if authkey == "tk_demo" else None


def mint(**overrides) -> str:
    claims = {"iss": "tk_demo", "sub": "李四", "aid": "860", "name": "张三", "exp": NOW + 600}
    claims.update(overrides)
    claims = {key: value for key, value in claims.items() if value is not None}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_round_trip():
    token = mint_playback_token(
        "tk_demo", SECRET, "李四", "860", user_name="张三", title="Math", duration=269.5, now=NOW
    )
    claims = verify_playback_token(token, secret_for, NOW + 10)
    assert (claims.user_id, claims.user_name, claims.asset_id) == ("李四", "张三", "860")
    assert (claims.title, claims.duration_ms) == ("Math", 269_500)


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param(mint(exp=NOW - 3600), InvalidCredentials, id="expired"),
        pytest.param(mint(exp=NOW + 2 * 86400), InvalidCredentials, id="exp-beyond-24h"),
        pytest.param(mint(iss="tk_other"), InvalidCredentials, id="unknown-issuer"),
        pytest.param(mint(exp=None), InvalidCredentials, id="no-exp"),
        pytest.param(mint(aid=None), InvalidCredentials, id="no-aid"),
        pytest.param(mint(aid=""), InvalidCredentials, id="empty-aid"),
        pytest.param(mint(dur=-5), InvalidCredentials, id="negative-dur"),
        pytest.param(mint(iss=None), MissingAuth, id="no-issuer"),
        pytest.param("not-a-jwt", MissingAuth, id="garbage"),
        pytest.param(
            jwt.encode(
                {"iss": "tk_demo", "sub": "u", "aid": "a", "exp": NOW + 60},
                "wrong-secret-wrong-secret-wrong-secret",
                algorithm="HS256",
            ),
            InvalidCredentials,
            id="forged-signature",
        ),
        pytest.param(
            jwt.encode(
                # "" is PyJWT's typed spelling of no key (with cryptography installed).
                {"iss": "tk_demo", "sub": "u", "aid": "a", "exp": NOW + 60},
                "",
                algorithm="none",
            ),
            InvalidCredentials,
            id="alg-none",
        ),
    ],
)
def test_refused(token, error):
    with pytest.raises(error):
        verify_playback_token(token, secret_for, NOW)


def test_fresh_token_within_leeway_is_accepted_and_expired_one_is_not():
    token = mint(exp=NOW + 600)
    assert verify_playback_token(token, secret_for, NOW + 600 + 59).user_id == "李四"
    with pytest.raises(InvalidCredentials):
        verify_playback_token(token, secret_for, NOW + 600 + 61)


def test_ttl_is_bounded_when_minting():
    with pytest.raises(ValueError, match="ttl_seconds"):
        mint_playback_token("tk_demo", SECRET, "u", "a", ttl_seconds=2 * 86400)
