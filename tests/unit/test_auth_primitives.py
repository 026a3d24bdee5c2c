"""argon2id hashing, password rules and access tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from server.auth.passwords import PasswordService, check_password_rules
from server.auth.tokens import AUDIENCE, ISSUER, TokenService
from server.errors import AuthenticationError, ValidationFailedError
from server.settings import AuthSettings

KEY = "unit-test-secret-key-0123456789-abcdefghijkl"


def test_default_cost_meets_asvs_argon2id_minimums() -> None:
    service = PasswordService(AuthSettings())
    stored = service.hash("a long enough passphrase")
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", stored)
    assert match is not None
    memory, time_cost, _parallel = (int(g) for g in match.groups())
    assert memory >= 47104 and time_cost >= 1
    assert service.verify(stored, "a long enough passphrase")
    assert not service.verify(stored, "a long enough passphrasE")


def test_unknown_user_costs_one_verification_and_fails() -> None:
    service = PasswordService(
        AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1)
    )
    assert service.verify(None, "anything at all") is False
    assert service.verify("not-a-hash", "anything at all") is False


def test_weaker_hash_needs_rehash() -> None:
    weak = PasswordService(
        AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1)
    )
    strong = PasswordService(AuthSettings())
    assert strong.needs_rehash(weak.hash("correct horse battery"))
    assert not strong.needs_rehash(strong.hash("correct horse battery"))


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 10"),
        ("x" * 129, "at most 128"),
        ("alice-is-great", "username"),
        ("Password1234", "well-known"),
    ],
    ids=["too-short", "too-long", "contains-username", "common"],
)
def test_password_rules(password: str, problem: str) -> None:
    with pytest.raises(ValidationFailedError, match=problem):
        check_password_rules(password, username="alice")


def test_a_long_passphrase_is_accepted() -> None:
    check_password_rules("four random words in a row", username="alice")


def test_token_round_trip() -> None:
    service = TokenService(KEY, timedelta(minutes=15))
    token = service.issue(user_id=7, token_version=3)
    claims = service.verify(token.token)
    assert (claims.user_id, claims.token_version) == (7, 3)


def _forge(claims: dict, key: str = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _claims(**overrides) -> dict:
    now = int(datetime.now(UTC).timestamp())
    base = {
        "sub": "7",
        "ver": 0,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "jti": "x",
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "token",
    [
        _forge(_claims(), key="another-secret-key-of-enough-length-000"),
        _forge(_claims(exp=int(datetime.now(UTC).timestamp()) - 5)),
        _forge(_claims(aud="someone-else")),
        _forge(_claims(iss="evil")),
        jwt.encode(_claims(), key=None, algorithm="none"),
        _forge({k: v for k, v in _claims().items() if k != "exp"}),
        "not.a.token",
    ],
    ids=["wrong-key", "expired", "wrong-audience", "wrong-issuer", "alg-none", "no-exp", "garbage"],
)
def test_tampered_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationError):
        TokenService(KEY, timedelta(minutes=15)).verify(token)
