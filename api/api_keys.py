"""API keys: each user creates, lists and revokes their own (services/api_keys.py)."""

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Response

from api.deps import ServicesDep, UlidPath, api_keys_of
from api.openapi import errors
from api.principal import CurrentUser, TokenSubject
from models.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut

router = APIRouter(tags=["api keys"])


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated, responses=errors(409))
async def create_api_key(body: ApiKeyCreate, user: CurrentUser, services: ServicesDep) -> ApiKeyCreated:
    """The key is in this answer only; it is stored as a keyed hash and cannot be shown again.
    The user is looked up: a token that outlived its user is 401, not a failed insert."""
    row, key = await api_keys_of(services).create(user.id, body.name, body.expires_in_days)
    return ApiKeyCreated(key=key, **{k: v for k, v in row.items() if k != "last_used_at"})


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(user_id: TokenSubject, services: ServicesDep) -> Sequence[Mapping[str, Any]]:
    return await api_keys_of(services).list(user_id)


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_api_key(key_id: UlidPath, user_id: TokenSubject, services: ServicesDep) -> Response:
    """Refused from the next request on, and sockets it opened close before their next frame."""
    await api_keys_of(services).revoke(user_id, key_id.upper())
    return Response(status_code=204)
