"""OpenAI's chat surface over durable generations: GET /v1/models and
POST /v1/chat/completions."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from api.deps import ServicesDep
from api.meta import models as native_models
from api.openai_admit import admitted
from api.openai_sse import TranslatedSSE
from api.principal import CurrentUser, TokenSubject
from models.openai_schemas import ChatCompletionIn
from services.openai import chat
from services.openai.chat_stream import ChatChunks

# Out of /openapi.json, which is the native contract: the /v1 contract is OpenAI's, checked
# with OpenAI's own SDKs, and its rules (the last message is the user's, refused features)
# are not a JSON schema (docs/openai-compatibility.md).
router = APIRouter(prefix="/v1", tags=["openai"], include_in_schema=False)


@router.get("/models", response_model=None)
async def list_models(user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    """The models of GET /models, in OpenAI's list format."""
    listing = await native_models(services)
    return {
        "object": "list",
        "data": [{"id": m["id"], "object": "model", "created": 0, "owned_by": m["provider"]} for m in listing["data"]],
    }


@router.post("/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
async def chat_completions(body: ChatCompletionIn, user_id: TokenSubject, services: ServicesDep) -> Response:
    """Every call is a generation in a session of kind "api" of its own: `X-Generation-ID` and
    `X-Session-ID` name them for the native routes (GET /generations/{id}, its events)."""
    started, lease = await admitted(services, user_id, body.stream, lambda: chat.start(services, user_id, body))
    headers = {"X-Generation-ID": started.accepted.generation_id, "X-Session-ID": started.accepted.session_id}
    if body.stream:
        chunks = ChatChunks(started)
        return TranslatedSSE(
            services.generations, started.accepted.generation_id, 0, chunks.first(), chunks.translate, headers, lease
        )
    return JSONResponse(await chat.completion(services, started), headers=headers)
