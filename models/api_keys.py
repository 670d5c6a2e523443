"""Request and response bodies of the API-key routes (api/api_keys.py)."""

from datetime import datetime

from pydantic import BaseModel, Field

from models.schemas import Strict


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    # The upper bound here only keeps the integer small; API_KEY_MAX_DAYS is the real limit.
    expires_in_days: int | None = Field(None, ge=1, le=36_500, description="omit for no expiry")


class ApiKeyOut(BaseModel):
    """A key as listed: never the secret."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApiKeyCreated(BaseModel):
    """The answer to creating a key: the only time `key` is shown."""

    id: str
    name: str
    key: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
