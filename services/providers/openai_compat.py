"""Any OpenAI-compatible chat-completions endpoint (OpenAI, Groq, Mistral, DeepSeek, OpenRouter,
Together, Gemini's compatible endpoint, Ollama, llama.cpp, vLLM, ...).

With PROVIDER_HTTP_TRANSPORT=aiohttp (the default) the streaming request goes over one
shared aiohttp session per provider (openai_http.py); the official `openai` SDK keeps the
model listing (its pagination and error classes, once per discovery, not per answer) and,
with `httpx`, the streaming request too."""

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack

import aiohttp
import httpx
import httpx2
import jiter
import openai

from services.errors import ProviderError
from services.json_types import JSONObject
from services.providers.base import ChatRequest, Finish, Provider, StreamEvent, Usage
from services.providers.failures import Secrets, failure
from services.providers.openai_errors import map_error
from services.providers.openai_http import StreamHTTP

__all__ = ["OpenAICompatProvider", "map_error"]

log = logging.getLogger(__name__)
Read = Callable[[], Awaitable[bytes]]  # the next bytes of a streamed body, b"" at its end


class OpenAICompatProvider(Provider):
    kind = "openai-compatible"

    def __init__(
        self,
        name: str,
        base_url: str | None,
        api_key: str | None,
        request_timeout: float = 600.0,
        models: list[str] | None = None,
        known_models: list[str] | None = None,
        connect_timeout: float = 10.0,
        max_tokens_param: str = "max_tokens",
        transport: str = "aiohttp",
        max_connections: int = 1000,
        error_body_max: int = 65536,
        secrets: Secrets | None = None,
    ):
        self.name = name
        self.base_url = base_url
        self.configured_models = list(models or [])
        self.known_models = list(known_models or [])
        self.max_tokens_param = max_tokens_param
        # Usage in the stream is asked for until the server is found to reject the option.
        self.stream_usage = True
        self.secrets = secrets if secrets is not None else Secrets()  # the registry's, shared
        self.secrets.remember(api_key)
        # Retries and timeouts are the generation runner's job (guards, retry policy):
        # the SDK's own would hide a stall and could duplicate text.
        # Keep-alive for as many connections as streams may run at once: the SDK's default
        # keeps 100, so past 100 concurrent streams every request opened a new connection.
        timeout = openai.Timeout(request_timeout, connect=connect_timeout)
        # A stream's reads have no HTTP-level deadline: the runner's first-token, idle and
        # total guards bound them, and aiohttp would re-arm a read timer on every chunk.
        self.stream_timeout = openai.Timeout(None, connect=connect_timeout, pool=connect_timeout)
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        http_client_cls = openai.DefaultAioHttpClient if transport == "aiohttp" else openai.DefaultAsyncHttpxClient
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=0,
            timeout=timeout,
            http_client=http_client_cls(timeout=timeout, limits=limits),
        )
        self.http = (
            StreamHTTP(name, self.client, connect_timeout, max_connections, error_body_max, self.secrets)
            if transport == "aiohttp"
            else None
        )

    async def list_models(self) -> list[str]:
        try:
            page = await self.client.models.list()
            return [m.id async for m in page]
        except openai.OpenAIError as exc:
            raise map_error(exc, self.name, self.secrets) from None
        except (httpx.HTTPError, httpx2.HTTPError) as exc:
            raise failure(
                self.name,
                f"listing models failed ({type(exc).__name__})",
                "upstream_unavailable",
                retryable=True,
                secrets=self.secrets,
            ) from None

    async def _open(self, stack: AsyncExitStack, request: ChatRequest, tail: "_Tail") -> Read:
        """The reader of the streamed body. Usage in the stream is asked for until the server
        is found to reject the option (older llama.cpp, vLLM): then once more without it."""
        params: JSONObject = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": True,
        }
        params[self.max_tokens_param] = request.max_tokens
        if request.stop:
            params["stop"] = list(request.stop)
        if self.stream_usage:
            try:
                return await self._post(stack, {**params, "stream_options": {"include_usage": True}}, tail)
            except ProviderError as exc:
                if exc.code != "provider_bad_request":
                    raise
            read = await self._post(stack, params, tail)
            log.info("%s rejects stream_options; usage will be counted locally", self.name)
            self.stream_usage = False
            return read
        return await self._post(stack, params, tail)

    async def _post(self, stack: AsyncExitStack, body: JSONObject, tail: "_Tail") -> Read:
        http = self.http
        if http is not None:
            response = await http.post(body)

            def done() -> None:  # on leaving the stack: by then `tail` knows whether [DONE] came
                http.done_with(response, tail.complete)

            stack.callback(done)
            return response.content.readany
        return await self._post_sdk(stack, body)

    async def _post_sdk(self, stack: AsyncExitStack, body: JSONObject) -> Read:
        """Through the SDK's `client.post` (its documented way to reach an endpoint with a
        raw response), skipping its per-chunk pydantic models and the typed-dict transform of
        the request, which walks every history message to change nothing in plain text."""
        try:
            response = await self.client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body=body,
                stream=True,
                options={"timeout": self.stream_timeout},
            )
        except openai.OpenAIError as exc:
            raise map_error(exc, self.name, self.secrets) from None
        stack.push_async_callback(response.aclose)
        # Raw bytes unless the server compressed the body (then httpx decodes them).
        identity = response.headers.get("content-encoding", "identity") == "identity"
        chunks = aiter(response.aiter_raw() if identity else response.aiter_bytes())

        async def read() -> bytes:
            async for chunk in chunks:
                if chunk:
                    return chunk
            return b""

        return read

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        tail = _Tail()
        # Leaving the stack (also by aclose of this generator) closes the HTTP stream.
        async with AsyncExitStack() as stack:
            read = await self._open(stack, request, tail)
            # The SSE body's `data:` lines are split here, in this one generator: every
            # layer of async iteration between the socket and the runner costs each token.
            buf, done = b"", False
            try:
                while data := await read():
                    if buf:
                        data = buf + data
                    *lines, buf = data.split(b"\n")
                    for line in lines:
                        if line.startswith(b"data:"):  # blank separators, comments, event names are skipped
                            text = self._event(line[5:].strip(), tail)
                            if text:
                                yield text
                            elif text is None:
                                done = tail.complete = True
                                break
                    if done:
                        break
                else:  # a last line without its newline
                    if buf.startswith(b"data:") and (text := self._event(buf[5:].strip(), tail)):
                        yield text
            except openai.OpenAIError as exc:
                raise map_error(exc, self.name, self.secrets) from None
            except (aiohttp.ClientError, httpx.HTTPError, httpx2.HTTPError) as exc:
                raise failure(
                    self.name, f"connection lost mid-stream ({type(exc).__name__})", "upstream_disconnected"
                ) from None
            except ValueError:
                raise failure(self.name, "malformed chunk in the stream", "upstream_error") from None
        if tail.usage is not None:
            yield tail.usage
        yield Finish("length" if tail.finish == "length" else "stop")

    def _event(self, payload: bytes, tail: "_Tail") -> str | None:
        """The text of one `data:` payload ("" if none); None at `[DONE]`."""
        if payload == b"[DONE]":
            return None
        chunk = jiter.from_json(payload)  # faster than json.loads per chunk (bench/README.md)
        if chunk.get("error"):  # an error event inside the stream: the server failed
            err = chunk["error"]
            message = err.get("message") if isinstance(err, dict) else str(err)
            raise failure(
                self.name, message or "error in stream", "upstream_error", retryable=True, secrets=self.secrets
            )
        if chunk.get("usage"):
            u = chunk["usage"]
            tail.usage = Usage(u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0)
        text = ""
        for choice in chunk.get("choices") or ():
            text += (choice.get("delta") or {}).get("content") or ""
            if choice.get("finish_reason"):
                tail.finish = choice["finish_reason"]
        return text

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await self.client.close()


class _Tail:
    """What the end of a stream reports: usage, and why it finished."""

    __slots__ = ("usage", "finish", "complete")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.complete = False  # [DONE] was read
