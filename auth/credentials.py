"""One answer to "who is calling" for every transport: a bearer credential (a JWT from
POST /token or an API key) becomes a Principal, or Unauthorized."""

from auth.security import token_claims
from services.api_keys import KEY_PREFIX, Principal
from services.container import Services
from services.errors import Unauthorized


async def authenticate(services: Services, credential: str) -> Principal:
    """A JWT is checked by its signature alone (no database); an API key by one indexed
    lookup, so a revoked key is refused on the very next request, on any replica."""
    if credential.startswith(KEY_PREFIX):
        return await services.api_keys.authenticate(credential)
    claims = token_claims(services.tokens, credential)
    return Principal(claims["sub"], None, float(claims["exp"]))


def refuse_duplicates(authorization_headers: list[str]) -> None:
    """Two Authorization headers are refused, not resolved: a proxy that checked the other
    one would disagree with us about who is calling."""
    if len(authorization_headers) > 1:
        raise Unauthorized("Send exactly one Authorization header.", code="duplicate_authorization")
