"""Staying signed in: the refresh-token cookie, its rotation and sign-out.

The refresh token travels only in an HttpOnly, SameSite=Strict cookie scoped to
/token/refresh, so page scripts never see it and no other route receives it (SECURITY.md)."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Request, Response

from api.deps import ServicesDep
from api.openapi import errors
from api.principal import TokenSubject, oauth2_scheme
from auth.security import create_token, token_claims
from models.schemas import Token
from services.api_keys import KEY_PREFIX
from services.container import Services
from services.refresh_tokens import RefreshTokens, Renewal

router = APIRouter(tags=["auth"])
COOKIE = "llmchat_refresh"
COOKIE_PATH = "/token/refresh"


def refresh_service(services: Services) -> RefreshTokens:
    assert services.refresh is not None  # built with the container
    return services.refresh


def _secure(request: Request, services: Services) -> bool:
    configured = services.settings.refresh_cookie_secure
    return request.url.scheme == "https" if configured is None else configured


def token_response(renewal: Renewal, request: Request, response: Response, services: Services) -> Token:
    """The access token of a sign-in or renewal; the new refresh token, when there is one,
    goes into the cookie."""
    if renewal.token is not None:
        response.set_cookie(
            COOKIE,
            renewal.token,
            max_age=renewal.max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=_secure(request, services),
        )
    response.headers["Cache-Control"] = "no-store"
    return Token(
        access_token=create_token(services.tokens, renewal.user_id, renewal.family_id),
        expires_in=services.tokens.expire_seconds,
    )


@router.post("/token/refresh", response_model=Token, responses=errors(401, 403))
async def refresh(
    request: Request,
    response: Response,
    services: ServicesDep,
    llmchat_refresh: Annotated[str | None, Cookie(max_length=200)] = None,
) -> Token:
    """A new access token (and refresh cookie) for the refresh cookie; the old one stops working."""
    renewal = await refresh_service(services).rotate(llmchat_refresh)
    return token_response(renewal, request, response, services)


@router.post("/logout", status_code=204)
async def logout(
    user_id: TokenSubject, services: ServicesDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Response:
    """Ends the sign-in the access token came from: its refresh tokens are revoked and the
    cookie cleared. The access token itself stays valid until it expires (it is checked by
    signature alone)."""
    if token and not token.startswith(KEY_PREFIX):
        family = token_claims(services.tokens, token).get("fam")
        if isinstance(family, str):
            await refresh_service(services).revoke_family(user_id, family)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
