"""Password hashing (argon2 via pwdlib) and JWTs (PyJWT, one pinned algorithm).

Pure: no import of the service layers (tests/test_layers.py); a refused token raises this
module's InvalidToken, which api/principal.py turns into the domain's Unauthorized."""

import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()


class InvalidToken(Exception):
    """A token that is expired, malformed, or not ours; `code` is the error's stable code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so both failures cost one argon2 check;
    # made on first use, not at import.
    return _hasher.hash("timing-equalizer-not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _dummy_hash())
        return False
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a corrupt stored hash is a failed login, not a 500
        return False


@dataclass(frozen=True)
class TokenConfig:
    secret_key: str
    algorithm: str
    issuer: str
    audience: str
    expire_seconds: int


def create_token(cfg: TokenConfig, subject: str, family: str | None = None) -> str:
    """`family`: the sign-in (refresh-token family) the token belongs to, which POST /logout
    ends."""
    now = int(time.time())
    claims: dict[str, str | int] = {
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + cfg.expire_seconds,
        "iss": cfg.issuer,
        "aud": cfg.audience,
    }
    if family is not None:
        claims["fam"] = family
    return jwt.encode(claims, cfg.secret_key, algorithm=cfg.algorithm)


def decode_token(cfg: TokenConfig, token: str) -> str:
    """Returns the subject (user id) of a valid token, or raises InvalidToken."""
    subject: str = token_claims(cfg, token)["sub"]  # checked to be a non-empty string
    return subject


def token_claims(cfg: TokenConfig, token: str) -> dict[str, Any]:
    """The claims of a valid token (a non-empty string `sub`, an `exp`), or InvalidToken."""
    try:
        claims = jwt.decode(
            token,
            cfg.secret_key,
            algorithms=[cfg.algorithm],  # pinned: `alg: none` and algorithm swaps fail here
            audience=cfg.audience,
            issuer=cfg.issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("Token expired; sign in again at POST /token.", "token_expired") from None
    except jwt.PyJWTError:
        raise InvalidToken("Invalid token; sign in again at POST /token.", "invalid_token") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("Invalid token subject.", "invalid_token")
    return claims
