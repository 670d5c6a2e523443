"""Registration and sign-in."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import DbDep, ServicesDep, client_of
from api.openapi import errors
from api.tokens import refresh_service, token_response
from models.schemas import Token, UserCreate, UserOut
from services import users
from services.errors import Forbidden

router = APIRouter(tags=["auth"])


@router.post("/users", status_code=201, response_model=UserOut, responses=errors(403, 409, 429))
async def register(body: UserCreate, request: Request, services: ServicesDep, db: DbDep) -> UserOut:
    if not services.settings.allow_registration:
        raise Forbidden(
            "Self-registration is turned off; ask an operator for an account.", code="registration_disabled"
        )
    await services.limits.check_registration(client_of(request, services))
    user = await users.create_user(db, body.username, body.password)
    return UserOut(id=user.id, username=user.username)


@router.post("/token", response_model=Token, responses=errors(401, 429, 503))
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    response: Response,
    services: ServicesDep,
    db: DbDep,
) -> Token:
    """An access token; a browser also gets the refresh cookie that renews it (POST /token/refresh)."""
    client, limits = client_of(request, services), services.limits
    await limits.login_attempt(form.username, client)
    user = await users.authenticate(db, form.username, form.password)
    await limits.login_succeeded(form.username, client)
    renewal = await refresh_service(services).issue(user.id)
    return token_response(renewal, request, response, services)
