"""Request and response bodies of the API-key routes (api/api_keys.py)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from models.schemas import Strict, _json_number

# Characters a name may not hold: controls, and the invisible format characters (zero-width,
# direction overrides, line separators) that would make a listing show something else.
_HIDDEN = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
# Of those allowed, at least one that is not blank. One pattern for the schema, pydantic
# and the service (services/api_keys.py), so what the schema calls valid is accepted.
NAME_PATTERN = rf"^[^{_HIDDEN}]*[^\s{_HIDDEN}][^{_HIDDEN}]*$"


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    # The bound here only keeps the integer small; API_KEY_MAX_DAYS is the real limit, and the
    # OpenAPI schema shows it (api/openapi.py).
    expires_in_days: Annotated[int, Field(ge=1, le=36_500, strict=False), BeforeValidator(_json_number)] | None = Field(
        None, description="omit for no expiry"
    )  # 30.0 is the JSON integer 30, as for max_tokens


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
