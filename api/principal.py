"""Who is calling: one answer for every transport (a bearer credential, a JWT from
POST /token or an API key, becomes a Principal, or Unauthorized), the REST dependencies
built on it (`CurrentUser`, `TokenSubject`), and token extraction for WebSockets."""

from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Row

from api.deps import api_keys_of, get_services
from auth.security import InvalidToken, token_claims
from services.api_keys import KEY_PREFIX, Principal
from services.container import Services
from services.errors import Unauthorized
from services.observability import note
from services.users import get_user

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


async def authenticate(services: Services, credential: str) -> Principal:
    """A JWT is checked by its signature alone (no database); an API key by one indexed
    lookup, so a revoked key is refused on the very next request, on any replica."""
    if credential.startswith(KEY_PREFIX):
        return await api_keys_of(services).authenticate(credential)
    try:
        claims = token_claims(services.tokens, credential)
    except InvalidToken as exc:
        raise Unauthorized(str(exc), code=exc.code) from None
    return Principal(claims["sub"], None, float(claims["exp"]))


def refuse_duplicates(authorization_headers: list[str]) -> None:
    """Two Authorization headers are refused, not resolved: a proxy that checked the other
    one would disagree with us about who is calling."""
    if len(authorization_headers) > 1:
        raise Unauthorized("Send exactly one Authorization header.", code="duplicate_authorization")


async def get_principal(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    services: Annotated[Services, Depends(get_services)],
) -> Principal:
    """The caller, from `Authorization: Bearer <jwt or API key>`."""
    refuse_duplicates(request.headers.getlist("authorization"))
    if not token:
        raise Unauthorized("Missing bearer token; get one at POST /token or POST /api-keys.")
    principal = await authenticate(services, token)
    # A disabled (or deleted) account is refused on every route, whatever the credential;
    # the policy is cached per process for USER_POLICY_TTL.
    await services.usage.admit(principal.user_id, budgets=False)
    note(user_id=principal.user_id)  # for the request's log event
    await services.limits.check_request(principal.user_id)  # every authenticated request counts
    return principal


async def get_token_subject(principal: Annotated[Principal, Depends(get_principal)]) -> str:
    """The id of the caller's user, without looking the user up: for routes whose own
    lookup proves the user exists (a session row is deleted with its owner, and so is an
    API key)."""
    return principal.user_id


async def get_current_user(
    user_id: Annotated[str, Depends(get_token_subject)],
    services: Annotated[Services, Depends(get_services)],
) -> Row[Any]:
    """The token's user (a row with `id` and `username`), looked up outside the route's
    session: a route that streams for minutes must not hold a pooled connection for its
    whole life."""
    user: Row[Any] = await get_user(services.db, user_id)
    return user


CurrentUser = Annotated[Row[Any], Depends(get_current_user)]  # .id, .username
TokenSubject = Annotated[str, Depends(get_token_subject)]  # a valid token's user id, not looked up


def websocket_token(ws: WebSocket, allow_query: bool) -> tuple[str | None, bool]:
    """(token, via_subprotocol) from the Authorization header or `bearer, <jwt>` subprotocol.
    A query-string token only when allowed: URLs end up in logs."""
    header = ws.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    protocols = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(protocols) >= 2 and protocols[0].lower() == "bearer":
        return protocols[1], True
    if allow_query and ws.query_params.get("token"):
        return ws.query_params["token"], False
    return None, bool(protocols and protocols[0].lower() == "bearer")
