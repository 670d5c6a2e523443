"""Builds the service objects from settings, once per process, and tears them down."""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, case, update

from auth.security import TokenConfig
from config import Settings, check_secret_key
from models.db import Message, utcnow
from services.api_keys import ApiKeyService
from services.chat_sessions import SessionService
from services.datadir_lock import DataDirLock
from services.db import Database
from services.generations.dispatch import JobDispatch
from services.generations.local_dispatch import LocalDispatch
from services.generations.runner import GenerationRunner
from services.generations.service import GenerationService
from services.generations.state import SHUTDOWN_ERROR
from services.generations.store import build_store
from services.generations.store_protocol import ACTIVE, GenerationStore
from services.limits import Limits
from services.observability.generation import GenerationEnd
from services.providers.registry import ProviderRegistry
from services.refresh_tokens import RefreshTokens
from services.streaming.log import StreamLog
from services.streaming.memory_log import MemoryStreamLog
from services.titles import AutoTitler
from services.usage import UsageService

if TYPE_CHECKING:
    from services.scaleout.rabbit_dispatch import RabbitDispatch
    from services.scaleout.reaper import Reaper

log = logging.getLogger(__name__)


@dataclass
class Core:
    """What every process that runs or follows generations builds: the API's Services and
    the scale-out worker (services/scaleout/worker.py), which builds nothing else."""

    settings: Settings
    db: Database
    providers: ProviderRegistry
    log: StreamLog
    store: GenerationStore
    usage: UsageService
    titles: AutoTitler  # chat titles asked of the model after a first answer (services/titles.py)

    def runner(self, worker_id: str) -> GenerationRunner:
        return GenerationRunner(
            self.settings,
            self.store,
            self.log,
            self.providers,
            worker_id,
            ended=self.titles.after(GenerationEnd(self.usage, self.settings.log_message_text)),
        )

    async def aclose(self) -> None:
        await self.titles.aclose()
        await self.log.aclose()
        await self.providers.aclose()
        await self.db.dispose()


@dataclass
class Services:
    settings: Settings
    db: Database
    tokens: TokenConfig
    providers: ProviderRegistry
    log: StreamLog
    store: GenerationStore
    dispatch: JobDispatch
    generations: GenerationService
    sessions: SessionService
    limits: Limits  # the sign-in limiter and per-user limits (services/limits/)
    usage: UsageService
    reaper: Any = None  # scale-out: ends generations of dead workers (services/scaleout/reaper.py)
    data_dir_lock: DataDirLock | None = None  # embedded: held for the process's life
    api_keys: ApiKeyService | None = None
    refresh: RefreshTokens | None = None
    titles: AutoTitler | None = None  # chat titles asked of the model (services/titles.py)

    async def start(self) -> None:
        if self.dispatch.runs_locally:  # before recovery, which would end another process's answers
            self.data_dir_lock = DataDirLock(self.settings.data_dir)
            self.data_dir_lock.acquire()
        await self.db.migrate()
        if self.dispatch.runs_locally:
            await recover_interrupted(self.db)
        await self.providers.start()  # the Ollama probe, off the import and build path
        await self.dispatch.start()
        if self.reaper is not None:
            await self.reaper.start()

    async def stop(self) -> None:
        if self.reaper is not None:
            await self.reaper.stop()
        await self.dispatch.shutdown()
        if self.titles is not None:
            await self.titles.aclose()
        if self.dispatch.runs_locally:
            await recover_interrupted(self.db)  # queued ones that never started
        await self.dispatch.aclose()
        await self.log.aclose()
        await self.limits.aclose()
        await self.providers.aclose()
        await self.db.dispose()
        if self.data_dir_lock is not None:
            self.data_dir_lock.release()


def build_stream_log(settings: Settings) -> StreamLog:
    if settings.redis_url:
        from services.streaming.redis_log import RedisStreamLog

        return RedisStreamLog(settings.redis_url, settings.stream_log_max_frames, settings.redis_key_prefix)
    return MemoryStreamLog(settings.stream_log_max_frames)


def build_core(settings: Settings) -> Core:
    db = Database(settings)
    store = build_store(db, settings.max_history_messages, settings.max_queued_per_session, settings.seq_reserve)
    providers = ProviderRegistry.from_settings(settings)
    return Core(
        settings,
        db,
        providers,
        build_stream_log(settings),
        store,
        UsageService(db, settings.user_policy_ttl, settings.usage_max_days),
        AutoTitler(settings, db, providers),
    )


def build_scaleout(core: Core) -> "tuple[RabbitDispatch, Reaper]":
    """The dispatch through RabbitMQ, and the reaper with the liveness keys it reads."""
    from services.scaleout.leases import Liveness
    from services.scaleout.rabbit_dispatch import RabbitDispatch
    from services.scaleout.reaper import Reaper
    from services.streaming.redis_log import RedisStreamLog

    dispatch = RabbitDispatch(core.settings, core.store, core.log)  # refuses a missing REDIS_URL
    if not isinstance(core.log, RedisStreamLog):
        raise ValueError("RABBITMQ_URL needs the Redis stream log (REDIS_URL)")
    liveness = Liveness(core.log.redis, core.log.keys)
    return dispatch, Reaper(core.settings, core.store, core.log, liveness, kick=dispatch.submit)


def build(settings: Settings, worker_id: str = "local") -> Services:
    tokens = TokenConfig(  # first: a refused key leaves nothing built to close
        settings.resolve_secret_key(),
        settings.jwt_algorithm,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.access_token_expire_minutes * 60,
    )
    core = build_core(settings)
    db = core.db
    dispatch: JobDispatch
    if settings.rabbitmq_url:
        dispatch, reaper = build_scaleout(core)
    else:  # generations run here: the only process with a runner besides the worker
        dispatch, reaper = LocalDispatch(core.store, core.runner(worker_id)), None
    return Services(
        settings=settings,
        db=db,
        tokens=tokens,
        providers=core.providers,
        log=core.log,
        store=core.store,
        dispatch=dispatch,
        generations=GenerationService(settings, core.store, core.log, dispatch),
        sessions=SessionService(settings, core.providers),
        limits=Limits(settings, db),
        usage=core.usage,
        reaper=reaper,
        api_keys=build_api_keys(settings, db, tokens.secret_key),
        refresh=RefreshTokens(settings, db),
        titles=core.titles,
    )


def build_api_keys(settings: Settings, db: Database, secret_key: str) -> ApiKeyService:
    hash_key = settings.api_key_hash_key or secret_key
    check_secret_key(hash_key)
    return ApiKeyService(
        db, hash_key, settings.api_keys_per_user, settings.api_key_max_days, settings.api_key_touch_interval
    )


async def recover_interrupted(db: Database) -> int:
    """Ends generations a crash left queued or running, keeping the text they had stored.
    A running one may have sent chunks past its last flush, up to its reserved seq: its
    done frame goes two above that, so the seq before it (a snapshot of the stored text,
    which replaces what a reader holds) and the done frame are above every seq sent."""
    sent = case((Message.seq_reserved > Message.last_seq, Message.seq_reserved), else_=Message.last_seq)
    async with db.sessionmaker() as session:
        # An UPDATE's result is a CursorResult (with its rowcount): Session.execute is typed
        # with the general Result of any statement.
        result: CursorResult[Any] = cast(
            CursorResult[Any],
            await session.execute(
                update(Message)
                .where(Message.role == "assistant", Message.status.in_(ACTIVE))
                .values(
                    status="failed",
                    finish_reason="interrupted",
                    error=SHUTDOWN_ERROR,
                    last_seq=case((Message.status == "running", sent + 2), else_=Message.last_seq + 1),
                    finished_at=utcnow(),
                )
            ),
        )
        await session.commit()
    if result.rowcount:
        log.warning("ended %d generation(s) interrupted by a restart", result.rowcount)
    return result.rowcount
