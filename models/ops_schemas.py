"""Request and response bodies of the operations API: usage and user administration."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# The budget columns are 32-bit integers on PostgreSQL.
Budget = Annotated[int | None, Field(ge=0, le=2_000_000_000, description="tokens; null: unlimited")]


class UserPatch(BaseModel):
    """Only the fields present change; a budget set to null removes it."""

    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    role: Literal["user", "admin"] | None = None
    daily_token_budget: Budget = None
    monthly_token_budget: Budget = None


class AdminUser(BaseModel):
    id: str
    username: str
    role: str
    disabled: bool
    daily_token_budget: int | None
    monthly_token_budget: int | None
    created_at: datetime


class UserPage(BaseModel):
    total: int
    limit: int
    offset: int
    users: list[AdminUser]


class UsageRow(BaseModel):
    day: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    generations: int
    estimated_generations: int  # whose tokens were counted, not reported by the provider
    user_id: str | None = None  # admin summaries
    username: str | None = None


class UsageTotal(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    generations: int


class UsageReport(BaseModel):
    from_: str = Field(alias="from")
    to: str
    usage: list[UsageRow]
    total: UsageTotal

    model_config = ConfigDict(populate_by_name=True)


# A per-user limit override (services/limits/overrides.py); left out or null: the setting's default.
LimitValue = Annotated[int | None, Field(strict=True, ge=1, le=10_000_000)]


class UserLimits(BaseModel):
    """A user's resource limits. In a PUT, the fields given replace the user's overrides (an
    empty body restores every default); the answer gives the limits now in force."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: LimitValue = None
    max_running_generations: LimitValue = None
    max_queued_generations: LimitValue = None
    sessions_per_hour: LimitValue = None
    max_open_streams: LimitValue = None
