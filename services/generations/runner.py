"""Runs one generation: claims it, streams the provider into the stream log, enforces the
guards, persists text at a bounded interval and finalizes exactly once.

Per token the hot path is: append a pre-encoded chunk frame, feed the loop detector, note
the time. Persistence and the watchdog run beside it, off the token path."""

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from config import Settings
from services.errors import InvalidInput, ProviderError
from services.generations.dispatch import Control
from services.generations.loop_detector import LoopDetector
from services.generations.persistence import Persistence
from services.generations.state import SHUTDOWN_ERROR, GenerationState, Stop
from services.generations.store_protocol import GenerationStore, Job
from services.observability import metrics, tracing
from services.observability.generation import Ended
from services.providers.base import ChatRequest, Finish, StreamEvent, Usage
from services.providers.registry import ProviderRegistry
from services.streaming import frames
from services.streaming.log import StreamLog

log = logging.getLogger(__name__)


class GenerationRunner(Persistence):
    def __init__(
        self,
        settings: Settings,
        store: GenerationStore,
        log_: StreamLog,
        providers: ProviderRegistry,
        worker_id: str = "local",
        ended: Callable[[Ended], Awaitable[None]] | None = None,
    ):
        self.s = settings
        self.ended = ended  # usage, metrics, span, log event: services/observability/generation.py
        self.store = store
        self.log = log_
        self.providers = providers
        self.worker_id = worker_id
        self.running: dict[str, GenerationState] = {}  # what the flusher writes
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, generation_id: str, control: Control, job: Job | None = None) -> None:
        """Runs a queued generation, or one already claimed for this worker (`job`)."""
        if job is None:
            job = await self.store.claim(generation_id, self.worker_id)
        if job is None:  # cancelled while queued, or another worker has it
            return
        state = GenerationState(generation_id, model=job.model, reserved=self.store.seq_reserve)
        control.task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        started = state.started = loop.time()
        state.span = tracing.start_generation(generation_id, job.model)
        metrics.GENERATIONS_STARTED.labels(metrics.provider_of(job.model)).inc()
        metrics.GENERATIONS_RUNNING.inc()
        state.watchdog = loop.call_at(
            started + min(self.s.first_token_timeout, self.s.idle_timeout, self.s.max_generation_seconds),
            self._watchdog,
            state,
            control,
            started,
        )
        self.running[generation_id] = state
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        ending, error = "stop", None  # error: JSONObject | None, as _finalize takes it
        try:
            if control.reason is not None:  # stopped between claim and start
                raise asyncio.CancelledError
            ending = await self._consume(job, state)
        except asyncio.CancelledError:
            if control.reason is None:
                raise
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                task.uncancel()
            ending = control.reason
            if ending == "shutdown":
                error = SHUTDOWN_ERROR
        except Stop as stop:
            ending = stop.reason
        except ProviderError as exc:
            ending, error = "error", {"code": exc.code, "message": exc.detail}
        except Exception as exc:  # a bug must still end the generation, visibly
            log.exception("generation %s crashed", generation_id)
            ending, error = "error", {"code": "internal_error", "message": f"internal error: {type(exc).__name__}"}
        finally:
            state.watchdog.cancel()
            control.task = None  # a late stop() must not hit whatever this task runs next
            self.running.pop(generation_id, None)
            metrics.GENERATIONS_RUNNING.dec()
            if not self.running and self._flusher is not None:
                self._flusher.cancel()  # nothing left to write: no task lingers past shutdown
                self._flusher = None
        await self._finalize(state, ending, error, job.request)

    def _watchdog(self, state: GenerationState, control: Control, started: float) -> None:
        """Checks the deadlines at most every IDLE_TIMEOUT, so the token path only notes
        the time of the last token and never reschedules a timer."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        hard = started + self.s.max_generation_seconds
        soft = started + self.s.first_token_timeout if state.seq == 0 else state.last_token_at + self.s.idle_timeout
        deadline = min(hard, soft)
        if now >= deadline:
            control.stop("timeout")
        elif control.reason is None:
            state.watchdog = loop.call_at(
                min(deadline, now + self.s.idle_timeout), self._watchdog, state, control, started
            )

    async def _consume(self, job: Job, state: GenerationState) -> str:
        """Primary model, then fallbacks; retries only before the first token."""
        candidates = [job.model, *job.fallback_models]
        last_error: ProviderError | None = None
        for index, model_name in enumerate(candidates):
            if index:
                metrics.FALLBACKS.labels(metrics.provider_of(model_name)).inc()
            try:
                provider, model = self.providers.split(model_name)
            except InvalidInput as exc:  # its provider is no longer configured
                last_error = ProviderError(exc.detail, code="unknown_model")
                continue
            request = ChatRequest(
                model,
                job.request.messages,
                job.request.temperature,
                job.request.max_tokens,
                job.request.top_p,
                job.request.stop,
            )
            state.model = f"{provider.name}/{model}"
            for attempt in range(self.s.provider_max_retries + 1):
                try:
                    return await self._stream(provider.stream(request), state, request.max_tokens)
                except ProviderError as exc:
                    metrics.PROVIDER_ERRORS.labels(provider.name, exc.code).inc()
                    if state.seq:  # text already went out: a retry could duplicate it
                        raise
                    last_error = exc
                    if not exc.retryable or attempt == self.s.provider_max_retries:
                        break
                    metrics.RETRIES.labels(provider.name).inc()
                    await asyncio.sleep(self.s.provider_retry_backoff * 2**attempt)
        assert last_error is not None  # every candidate either returned or set it
        raise last_error

    async def _stream(self, events: AsyncGenerator[StreamEvent, None], state: GenerationState, max_tokens: int) -> str:
        loop = asyncio.get_running_loop()
        detector = LoopDetector(self.s.loop_min_repeats, self.s.loop_min_chars, self.s.loop_max_period)
        append, gen_id, chunk = self.log.append, state.generation_id, frames.chunk
        # A log that appends synchronously (the embedded one): no coroutine per token, and a
        # timer can flush, so tokens may be coalesced.
        append_now = self.log.nowait_append()
        window = self.s.coalesce_window_ms / 1000 if append_now is not None else 0.0
        pending: list[str] = []  # coalescing: tokens held for the next frame (never a first one)
        timer: asyncio.TimerHandle | None = None
        due = 0.0  # a token arriving from then on goes out at once

        def emit() -> None:  # one chunk frame with the held tokens' text: one seq
            nonlocal timer
            timer = None
            text = pending[0] if len(pending) == 1 else "".join(pending)
            pending.clear()
            state.seq += 1
            state.parts.append(text)
            assert append_now is not None  # tokens are only held when the log appends synchronously
            append_now(gen_id, chunk(gen_id, state.seq, text), text)

        def emit_due() -> None:  # the window ran out with tokens held: send them, open the next
            nonlocal due
            emit()
            due = loop.time() + window

        finish = "stop"
        tokens = 0
        try:
            async for event in events:
                if type(event) is str:
                    if state.seq + 2 > state.reserved:  # this token, and a timer's emit meanwhile
                        await self._reserve(state)
                    tokens += 1
                    now = state.last_token_at = loop.time()
                    if tokens == 1:
                        state.first_token_at = now
                    if window:
                        pending.append(event)
                        if now >= due:  # the first token, or one after a quiet window: at once
                            if timer is not None:
                                timer.cancel()
                            emit()
                            due = now + window
                        elif timer is None:
                            timer = loop.call_at(due, emit_due)
                    else:
                        state.seq += 1
                        state.parts.append(event)
                        if append_now is not None:
                            append_now(gen_id, chunk(gen_id, state.seq, event), event)
                        else:
                            await append(gen_id, chunk(gen_id, state.seq, event), event)
                    if detector.feed(event):
                        raise Stop("loop")
                    if tokens >= max_tokens:
                        raise Stop("length")
                elif isinstance(event, Usage):
                    state.usage = event
                elif isinstance(event, Finish):
                    finish = event.reason
        finally:
            if timer is not None:
                timer.cancel()
            if pending:  # held tokens go out before the done frame, however the stream ends
                emit()
            await events.aclose()  # closes the upstream request on every exit path
        return finish
