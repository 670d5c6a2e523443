"""The streaming chat-completions request of an OpenAI-compatible provider over one shared
aiohttp session, without the `openai` SDK's request machinery (its httpx2 client, the
aiohttp transport under it, the auth-retry wrapper and the request options), which cost
the provider most of its per-request CPU and added time to first token (bench/README.md).

Same headers as the SDK (`Authorization`, its `User-Agent` and platform headers), the same
timeouts (connect and pool bounded, no read deadline: the runner's guards bound a stream),
and the same errors: statuses and transport failures become the ProviderError codes the
SDK's exceptions map to (`openai_errors.map_error`), scrubbed by `failures.failure`."""

import asyncio
import json
from typing import Any

import aiohttp
import openai
from yarl import URL

from services.errors import ProviderError
from services.providers.failures import Secrets, failure

# HTTP status -> (code, retryable), as openai_errors.map_error maps the SDK's exceptions.
_STATUS = {
    400: ("provider_bad_request", False),
    401: ("provider_auth_failed", False),
    403: ("provider_auth_failed", False),
    404: ("model_not_found", False),
    422: ("provider_bad_request", False),
    429: ("provider_rate_limited", True),
}
# What the SDK says of a failed connection and of a connect timeout.
CONNECTION_ERROR, TIMED_OUT = "Connection error.", "Request timed out."


class StreamHTTP:
    """One provider's keep-alive pool for streaming requests. The session is made in the
    event loop on first use (aiohttp binds it to the running loop) and closed by `aclose`
    at shutdown."""

    def __init__(
        self,
        name: str,
        client: openai.AsyncOpenAI,
        connect_timeout: float,
        max_connections: int,
        error_body_max: int,
        secrets: Secrets,
    ) -> None:
        self.name = name
        self.secrets = secrets  # the provider registry's keys, scrubbed from every message
        self.url = URL(str(client.base_url).rstrip("/") + "/chat/completions")
        headers = {k: v for k, v in {**client.default_headers, **client.auth_headers}.items() if isinstance(v, str)}
        self.headers = headers
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=None
        )
        self.max_connections = max_connections
        self.error_body_max = error_body_max
        self._session: aiohttp.ClientSession | None = None
        self._draining: set[asyncio.Task[None]] = set()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, headers=self.headers, skip_auto_headers=("Accept-Encoding",)
            )
        return self._session

    async def post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """The response of a 2xx answer, its body unread; a ProviderError otherwise."""
        data = json.dumps(body).encode()
        try:
            response = await self._open_session().post(self.url, data=data, allow_redirects=False)
        except (aiohttp.ConnectionTimeoutError, TimeoutError):
            raise failure(self.name, TIMED_OUT, "upstream_timeout", retryable=True, secrets=self.secrets) from None
        except aiohttp.ClientError:  # refused, unresolvable, reset before the answer
            raise failure(
                self.name, CONNECTION_ERROR, "upstream_unavailable", retryable=True, secrets=self.secrets
            ) from None
        if response.status < 300:
            return response
        try:
            raw = await _read_bounded(response.content, self.error_body_max)
        except aiohttp.ClientError:
            raw = b""
        finally:
            response.close()
        raise status_failure(self.name, response.status, raw, self.secrets)

    def done_with(self, response: aiohttp.ClientResponse, complete: bool) -> None:
        """Gives the connection back to the pool when the body ended, or when the answer did
        (`[DONE]`) and only the body's last bytes are still on their way: read in the
        background, so the answer ends now. Closed otherwise: a cancelled answer must stop
        the upstream generating."""
        if response.content.is_eof():
            response.release()
        elif complete:
            task = asyncio.create_task(self._drain(response))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
        else:
            response.close()

    async def _drain(self, response: aiohttp.ClientResponse) -> None:
        try:
            async with asyncio.timeout(self.timeout.connect):
                await _read_bounded(response.content, self.error_body_max)
        except (aiohttp.ClientError, TimeoutError):
            pass
        if response.content.is_eof():
            response.release()
        else:
            response.close()

    async def aclose(self) -> None:
        for task in list(self._draining):
            task.cancel()
        if self._session is not None:
            await self._session.close()


async def _read_bounded(content: aiohttp.StreamReader, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit:
        part = await content.read(limit - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def status_failure(provider: str, status: int, raw: bytes, secrets: Secrets | None = None) -> ProviderError:
    code, retryable = _STATUS.get(status) or (("upstream_error", True) if status >= 500 else ("provider_error", False))
    return failure(provider, error_message(status, raw), code, retryable=retryable, status=status, secrets=secrets)


def error_message(status: int, raw: bytes) -> str:
    """The message of an error body, found where the SDK finds it (`error.message`, then a
    string `error`, then `message`, else the body's text)."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text or f"Error code: {status}"
    inner = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(inner, dict) and inner.get("message"):
        return str(inner["message"])
    if isinstance(inner, str) and inner:
        return inner
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"Error code: {status} - {body}"
