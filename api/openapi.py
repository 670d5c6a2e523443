"""The OpenAPI schema as the service really answers, built in one place.

FastAPI documents every error as its own `HTTPValidationError` and only the statuses a route
declares; here every error is the native `{code, detail}` body, and each operation lists the
statuses it can return: what its shape implies (a token: 401; a path id: 404; a body: 400,
413, 422) plus what a route declares with `errors(...)`. The limits that depend on settings
(message and system prompt length) and the rules the services check (usernames, passwords,
offered models) are written into the request schemas, so a request the schema calls valid is
one the service accepts."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from auth.passwords import MAX_PASSWORD, MIN_PASSWORD, USERNAME_RE
from config import Settings
from models.schemas import LAST_EVENT_ID_DIGITS, NOT_BLANK_PATTERN
from services.providers.offline import MODEL as OFFLINE_MODEL
from services.providers.offline import OfflineProvider
from services.providers.registry import ProviderRegistry

# What `responses=` of a route takes: each status (or "default") to its OpenAPI entry.
Responses = dict[int | str, dict[str, Any]]
ERROR_REF = {"$ref": "#/components/schemas/Error"}
SSE_MEDIA_TYPE = "text/event-stream"
DESCRIPTIONS = {
    400: "The body is not valid JSON or form data",
    401: "Missing, invalid or expired token, or wrong credentials",
    403: "Not allowed",
    404: "No such object, or one of another user (answered the same)",
    409: "Conflicts with an existing object",
    413: "Request body over MAX_REQUEST_BYTES",
    422: "Invalid input; `code` says which rule",
    429: "Rate limited or queue full; see Retry-After",
    502: "The provider failed",
    503: "A component or the provider is unavailable",
    504: "The provider did not answer in time",
}


class Error(BaseModel):
    """The body of every error response."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="stable snake_case code")
    detail: str = Field(description="a message for humans")


def errors(*statuses: int) -> Responses:
    """`responses=` for the statuses a route returns beyond what its shape implies."""
    return {status: {"description": DESCRIPTIONS[status], "model": Error} for status in statuses}


FRAME_TYPES = ["session", "accepted", "chunk", "snapshot", "done", "error"]
# One event of a stream (OpenAPI 3.1 reads a stream's `schema` per event): `data` is a frame
# of PROTOCOL.md as JSON; `id` is its seq, absent on events outside the sequence.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": FRAME_TYPES},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": FRAME_TYPES}},
            },
        },
    },
}


def sse(description: str) -> Responses:
    """`responses=` entry of a 200 that is a Server-Sent Events stream of PROTOCOL.md frames."""
    return {200: {"description": description, "content": {SSE_MEDIA_TYPE: {"schema": SSE_EVENT}}}}


def install(app: FastAPI, settings: Settings, providers: ProviderRegistry) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            document_errors(schema)
            document_rules(schema, settings, providers)
            document_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's hook for a custom schema is this assignment


def document_errors(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = Error.model_json_schema()
    for operations in schema["paths"].values():
        for operation in operations.values():
            _document_operation(operation)


def _document_operation(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    implied = set()
    if operation.get("security"):
        implied |= {401, 429}  # every authenticated request counts against USER_REQUESTS_PER_MINUTE
    if any(p["in"] == "path" for p in operation.get("parameters", ())):
        implied.add(404)
    if operation.get("parameters") or "requestBody" in operation:
        implied.add(422)
    if "requestBody" in operation:
        implied |= {400, 413}
    for status in implied:
        responses.setdefault(
            str(status), {"description": DESCRIPTIONS[status], "content": {"application/json": {"schema": ERROR_REF}}}
        )
    default_422 = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
    if default_422 == {"$ref": "#/components/schemas/HTTPValidationError"}:  # the handler answers {code, detail}
        responses["422"] = {"description": DESCRIPTIONS[422], "content": {"application/json": {"schema": ERROR_REF}}}
    for parameter in operation.get("parameters", ()):
        if parameter["name"] == "Last-Event-ID":
            # empty: no resume point, as if the header were absent
            parameter["schema"] = {
                **_nullable_branch(parameter["schema"]),
                "pattern": f"^[0-9]{{0,{LAST_EVENT_ID_DIGITS}}}$",
            }
    ok = responses.get("200", {}).get("content", {})
    if SSE_MEDIA_TYPE in ok and not ok.get("application/json", {}).get("schema"):
        ok.pop("application/json", None)  # a stream only: FastAPI's default JSON entry is not real


def document_rules(schema: dict[str, Any], settings: Settings, providers: ProviderRegistry) -> None:
    components = schema["components"]["schemas"]
    user = components["UserCreate"]["properties"]
    # The service matches the whole name (fullmatch); a schema pattern matches anywhere.
    user["username"]["pattern"] = f"^{USERNAME_RE.pattern}$"
    # Not blank; the common-password and username checks cannot be written as a pattern.
    user["password"].update(minLength=MIN_PASSWORD, maxLength=MAX_PASSWORD, pattern=NOT_BLANK_PATTERN)
    for field in ("username", "password"):  # an empty form field counts as a missing one
        components["Body_login_token_post"]["properties"][field]["minLength"] = 1
    components["ChatIn"]["properties"]["message"].update(
        minLength=1, maxLength=settings.max_message_chars, pattern=NOT_BLANK_PATTERN
    )
    models = offered_models(providers)
    for name in ("SetLLM", "SessionPatch"):
        properties = components[name]["properties"]
        _nullable_branch(properties["system_prompt"])["maxLength"] = settings.max_system_prompt_chars
        if models is not None:
            _nullable_branch(properties["model_name"])["enum"] = models
            _nullable_branch(properties["fallback_models"])["items"]["enum"] = models
    check = schema["paths"].get("/models/{model_id}/check", {}).get("get")
    if check and models is not None:
        for parameter in check["parameters"]:
            parameter["schema"]["enum"] = models
    listing = schema["paths"].get("/sessions", {}).get("get")
    for parameter in listing["parameters"] if listing else ():
        if parameter["name"] == "q":  # the setting's bound, not the route's outer one
            _nullable_branch(parameter["schema"])["maxLength"] = settings.search_max_query_chars
    days = _nullable_branch(components["ApiKeyCreate"]["properties"]["expires_in_days"])
    days["maximum"] = settings.api_key_max_days
    patch = components["SessionPatch"]["properties"]
    for key in ("model_name", "temperature", "max_tokens", "top_p"):  # omitted or set, never null
        patch[key] = {**_nullable_branch(patch[key]), "title": patch[key].get("title", key)}


# What feeds GET /stream/{stream_id}, whose id no response field is named after: a new
# session's id, and an answer's generation id (a stateful client follows these links).
STREAM_SOURCES = [
    ("/set-llm", "post", "201", "session_id"),
    ("/chat", "post", "200", "generation_id"),
    ("/chat", "post", "202", "generation_id"),
]


def document_links(schema: dict[str, Any]) -> None:
    target = schema["paths"].get("/stream/{stream_id}", {}).get("get")
    if target is None:
        return
    for path, method, status, field in STREAM_SOURCES:
        response = schema["paths"].get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is not None:
            response.setdefault("links", {})["Stream"] = {
                "operationId": target["operationId"],
                "parameters": {"stream_id": f"$response.body#/{field}"},
            }


def _nullable_branch(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null schema of an `X | None` property (the property itself if not nullable)."""
    branches: list[dict[str, Any]] = prop.get("anyOf", [])
    for branch in branches:
        if branch.get("type") != "null":
            return branch
    return prop


def offered_models(providers: ProviderRegistry) -> list[str] | None:
    """The models every session may name, when they are known without asking a provider: with
    only the offline provider. Other providers list theirs at run time (GET /models), so the
    schema then leaves the name free and the service answers 422 `unknown_model`."""
    if not all(isinstance(p, OfflineProvider) for p in providers.providers.values()):
        return None
    return [f"{p.name}/{OFFLINE_MODEL}" for p in providers.providers.values()]
