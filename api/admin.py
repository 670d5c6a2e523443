"""Usage and administration: GET /usage (one's own), and for admins /admin/users and
/admin/usage, and a user's limits at /admin/users/{id}/limits. A non-admin gets 403
admin_required on every /admin route."""

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, StringConstraints
from sqlalchemy import Row

from api.deps import ServicesDep, UlidPath
from api.openapi import errors
from api.principal import CurrentUser
from models.ops_schemas import AdminUser, UsageReport, UserLimits, UserPage, UserPatch
from services import admin
from services.container import Services
from services.errors import Forbidden

router = APIRouter(tags=["usage and admin"])

# ISO dates only (YYYY-MM-DD): pydantic would read a bare number as a Unix timestamp. The
# pattern checks the text, then the validator makes it the date the route receives (and mypy sees).
if TYPE_CHECKING:
    Day = date
else:
    Day = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(date.fromisoformat)]
FromQuery = Annotated[
    Day | None,
    Query(
        alias="from",
        json_schema_extra={"format": "date"},
        description="first day (UTC), default 29 days before `to`; at most USAGE_MAX_DAYS before it",
    ),
]
ToQuery = Annotated[
    Day | None, Query(alias="to", json_schema_extra={"format": "date"}, description="last day (UTC), default today")
]


async def require_admin(user: CurrentUser) -> Row[Any]:
    if user.role != "admin":
        raise Forbidden("This needs an admin account.", code="admin_required")
    return user


Admin = Annotated[Row[Any], Depends(require_admin)]


@router.get("/usage", response_model=UsageReport, response_model_by_alias=True, response_model_exclude_none=True)
async def my_usage(
    user: CurrentUser, services: ServicesDep, start: FromQuery = None, end: ToQuery = None
) -> Mapping[str, Any]:
    """Your tokens per day and model."""
    return await services.usage.summary(user.id, start, end)


@router.get("/admin/usage", response_model=UsageReport, response_model_by_alias=True, responses=errors(403))
async def all_usage(_: Admin, services: ServicesDep, start: FromQuery = None, end: ToQuery = None) -> Mapping[str, Any]:
    """Everyone's tokens per user, day and model."""
    return await services.usage.summary(None, start, end)


@router.get("/admin/users", response_model=UserPage, responses=errors(403))
async def list_users(
    _: Admin,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Mapping[str, Any]:
    return await admin.list_users(services.db, min(limit, services.settings.admin_page_max), offset)


@router.patch("/admin/users/{user_id}", response_model=AdminUser, responses=errors(403, 409))
async def patch_user(
    user_id: UlidPath, body: UserPatch, request: Request, me: Admin, services: ServicesDep
) -> Mapping[str, Any]:
    """Disable or re-enable a user, change their role or budgets. Disabling refuses their
    tokens at once and closes their sockets on this process."""
    user_id = user_id.upper()
    changes = {
        k: v
        for k, v in body.model_dump(include=body.model_fields_set).items()
        if v is not None or k.endswith("_budget")
    }  # null removes a budget, not a flag
    view = await admin.update_user(services.db, changes, user_id=user_id, acting=me.id)
    services.usage.forget(user_id)
    if view["disabled"]:
        await request.app.state.connections.close_user(user_id, "account disabled", code=4403)
    return view


@router.put("/admin/users/{user_id}/limits", response_model=UserLimits, responses=errors(403))
async def put_limits(user_id: UlidPath, body: UserLimits, _: Admin, services: ServicesDep) -> dict[str, int]:
    """Raise or lower one user's resource limits; the fields left out take the settings'
    defaults again. Other replicas apply the change within USER_LIMITS_CACHE_TTL."""
    user_id = user_id.upper()
    await services.limits.set_user_limits(user_id, body.model_dump(exclude_none=True) or None)
    return await effective_limits(services, user_id)


async def effective_limits(services: Services, user_id: str) -> dict[str, int]:
    return {name: await services.limits.user_limit(user_id, name) for name in UserLimits.model_fields}
