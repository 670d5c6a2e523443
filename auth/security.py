"""Password hashing (argon2 via pwdlib) and JWTs (PyJWT, one pinned algorithm)."""

import time
from dataclasses import dataclass

import jwt
from pwdlib import PasswordHash

from services.errors import Unauthorized

_hasher = PasswordHash.recommended()
# Verified against when the user does not exist, so both failures cost one argon2 check.
_DUMMY_HASH = _hasher.hash("timing-equalizer-not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
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
        "sub": subject, "iat": now, "nbf": now, "exp": now + cfg.expire_seconds,
        "iss": cfg.issuer, "aud": cfg.audience,
    }
    if family is not None:
        claims["fam"] = family
    return jwt.encode(claims, cfg.secret_key, algorithm=cfg.algorithm)


def decode_token(cfg: TokenConfig, token: str) -> str:
    """Returns the subject (user id) of a valid token, or raises Unauthorized."""
    return token_claims(cfg, token)["sub"]


def token_claims(cfg: TokenConfig, token: str) -> dict:
    """The claims of a valid token (a non-empty string `sub`, an `exp`), or Unauthorized."""
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
        raise Unauthorized("Token expired; sign in again at POST /token.", code="token_expired")
    except jwt.PyJWTError:
        raise Unauthorized("Invalid token; sign in again at POST /token.", code="invalid_token")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("Invalid token subject.", code="invalid_token")
    return claims
