"""POST /v1/chat/completions: OpenAI's chat completions over durable generations."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, ServicesDep
from api.openai_sse import TranslatedSSE
from models.openai_schemas import ChatCompletionIn
from services.openai import chat
from services.openai.chat_stream import ChatChunks

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
async def chat_completions(body: ChatCompletionIn, user: CurrentUser, services: ServicesDep):
    """Every call is a generation in a session of kind "api" of its own: `X-Generation-ID` and
    `X-Session-ID` name them for the native routes (GET /generations/{id}, its events)."""
    started = await chat.start(services, user.id, body)
    headers = {"X-Generation-ID": started.accepted.generation_id, "X-Session-ID": started.accepted.session_id}
    if body.stream:
        chunks = ChatChunks(started)
        return TranslatedSSE(services.generations, started.accepted.generation_id, 0, chunks.first(),
                             chunks.translate, headers)
    return JSONResponse(await chat.completion(services, started), headers=headers)
