"""The generation store's contract (services/generations/store_protocol.py), the same tests
over both implementations: SqliteGenerationStore on a temporary SQLite file and
SqlGenerationStore on PostgreSQL. Rows come back as the store's frozen dataclasses, never as
ORM objects or driver rows; races have one winner."""

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from models.db import Message, new_id, utcnow
from services.errors import Conflict, NotFound, RateLimited
from services.generations.store_types import Branch, GenerationRow, Interrupted, Job, NewCall, Turn
from tests.store_contract_support import (  # noqa: F401 (the fixtures `services` needs)
    ERROR,
    RESERVE,
    chat_of,
    done,
    store_backend,
    store_postgres,
    store_services,
)


async def test_a_turn_is_created_and_claimed_in_one_go(services):
    store, chat = services.store, await chat_of(services)
    turn = await store.create_turn(chat, "hello", "c-1", claim_for="w1")
    assert type(turn) is Turn and type(turn.job) is Job
    assert (turn.status, turn.position, turn.created) == ("running", 0, True)
    assert turn.job.request.messages == [{"role": "user", "content": "hello"}]
    row = await store.get(turn.generation_id)
    assert type(row) is GenerationRow and not isinstance(row, Message)
    assert (row.status, row.worker_id, row.seq_reserved, row.session_id) == ("running", "w1", RESERVE, chat.id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = "completed"  # type: ignore[misc]
    assert await store.latest(chat.id) == row
    assert await store.active_in_session(chat.id) == [turn.generation_id]
    second = await store.create_turn(chat, "more", None)
    assert (second.status, second.position, second.job) == ("queued", 1, None)
    job = await store.claim(second.generation_id, "w2")
    assert type(job) is Job and await store.claim(second.generation_id, "w3") is None  # taken


async def test_the_same_client_msg_id_returns_the_first_turn(services):
    store, chat = services.store, await chat_of(services)
    first = await store.create_turn(chat, "hello", "same")
    again = await store.create_turn(chat, "hello", "same", claim_for="w1")
    assert (again.generation_id, again.created, again.status, again.job) == (first.generation_id, False, "queued", None)
    owned = await store.create_owned_turn(chat.user_id, chat.id, "hello", "same")
    assert (owned.generation_id, owned.created) == (first.generation_id, False)
    assert await store.active_in_session(chat.id) == [first.generation_id]


async def test_the_queue_is_bounded_and_owned_sends_are_checked(services):
    store, chat = services.store, await chat_of(services)
    for text in ("one", "two", "three"):
        await store.create_turn(chat, text)
    with pytest.raises(RateLimited) as full:
        await store.create_turn(chat, "four")
    assert full.value.code == "queue_full"
    other = await chat_of(services)
    with pytest.raises(NotFound):
        await store.create_owned_turn(other.user_id, chat.id, "not mine")

    def refuse(active: list[str]) -> None:
        assert active == [chat.id] * 3  # the session of each of the user's active answers
        raise RateLimited("no", code="too_many_queued")

    with pytest.raises(RateLimited):
        await store.create_owned_turn(chat.user_id, chat.id, "refused", check=refuse)
    assert len(await store.active_in_session(chat.id)) == 3  # the refused send stored nothing
    mine = await store.create_owned_turn(other.user_id, other.id, "mine", check=lambda active: None)
    assert (mine.created, mine.status, mine.position) == (True, "queued", 0)


async def test_flush_and_reserve_only_grow_the_reservation(services):
    store, chat = services.store, await chat_of(services)
    turn = await store.create_turn(chat, "hello", None, claim_for="w1")
    idle = await store.create_turn(chat, "queued", None)
    await store.flush([(turn.generation_id, "Hi", 1, 300)], [])
    await store.flush([(turn.generation_id, "Hi the", 2, 100)], [idle.generation_id])
    row = await store.get(turn.generation_id)
    assert (row.content, row.last_seq, row.seq_reserved) == ("Hi the", 2, 300)
    await store.reserve(turn.generation_id, 200)
    assert (await store.get(turn.generation_id)).seq_reserved == 300
    await store.reserve(turn.generation_id, 400)
    assert (await store.get(turn.generation_id)).seq_reserved == 400
    assert (await store.get(idle.generation_id)).heartbeat_at is None  # queued: not touched


async def test_finalize_only_if_has_one_winner(services):
    store, chat = services.store, await chat_of(services)
    turn = await store.create_turn(chat, "hello", None, claim_for="w1")
    wins = await asyncio.gather(
        *(
            store.finalize(
                turn.generation_id,
                content=f"end {i}",
                last_seq=i,
                status="completed",
                finish_reason="stop",
                usage={"prompt_tokens": 1, "completion_tokens": i},
                model="offline/echo",
                only_if=("running",),
            )
            for i in range(5)
        )
    )
    assert sorted(wins) == [False] * 4 + [True]
    row = await store.get(turn.generation_id)
    winner = wins.index(True)
    assert (row.status, row.content, row.last_seq, row.usage) == (
        "completed",
        f"end {winner}",
        winner,
        {"prompt_tokens": 1, "completion_tokens": winner},
    )
    assert row.finished_at is not None and row.finished_at.tzinfo is not None


async def test_next_runnable_goes_in_order_one_at_a_time(services):
    store, chat = services.store, await chat_of(services)
    assert await store.next_runnable(chat.id) is None
    turns = [await store.create_turn(chat, text) for text in ("one", "two", "three")]
    assert [t.position for t in turns] == [0, 1, 2]
    assert await store.next_runnable(chat.id) == turns[0].generation_id
    assert await store.claim(turns[0].generation_id, "w1") is not None
    assert await store.next_runnable(chat.id) is None  # one runs
    await done(store, turns[0].generation_id)
    assert await store.next_runnable(chat.id) == turns[1].generation_id
    job = await store.claim(turns[1].generation_id, "w1")
    assert [m["content"] for m in job.request.messages] == ["one", "Hi there", "two"]


async def test_end_interrupted_has_one_winner_which_alone_seals(services):
    store, chat = services.store, await chat_of(services)
    turn = await store.create_turn(chat, "hello", None, claim_for="w1")
    await store.flush([(turn.generation_id, "partial", 3, 4)], [])
    sealed: list[int] = []

    async def seal() -> tuple[str, int] | None:
        sealed.append(1)
        await asyncio.sleep(0.05)  # the other party tries meanwhile
        return None

    ended = await asyncio.gather(*(store.end_interrupted(turn.generation_id, error=ERROR, seal=seal) for _ in range(3)))
    winners = [e for e in ended if e is not None]
    assert len(winners) == 1 and sealed == [1]
    # Without the log, the stored text gets a seq above every chunk the reservation allowed.
    assert winners[0] == Interrupted(chat.id, "partial", RESERVE + 1, winners[0].usage, "offline/echo")
    row = await store.get(turn.generation_id)
    assert (row.status, row.finish_reason, row.error, row.last_seq) == ("failed", "interrupted", ERROR, RESERVE + 2)


async def test_end_interrupted_takes_the_log_and_its_conditions(services):
    store, chat = services.store, await chat_of(services)
    turn = await store.create_turn(chat, "hello", None, claim_for="w1")

    async def from_log() -> tuple[str, int] | None:
        return "from the log", 7

    past = utcnow() - timedelta(hours=1)
    assert await store.end_interrupted(turn.generation_id, error=ERROR, seal=from_log, stale_before=past) is None
    assert await store.end_interrupted(turn.generation_id, error=ERROR, seal=from_log, owner="w2") is None
    ended = await store.end_interrupted(turn.generation_id, error=ERROR, seal=from_log, owner="w1")
    assert ended is not None and (ended.content, ended.seq) == ("from the log", 7)
    row = await store.get(turn.generation_id)
    assert (row.content, row.last_seq, row.usage["prompt_tokens"]) == ("from the log", 8, 0)
    queued = await store.create_turn(chat, "queued")
    assert await store.end_interrupted(queued.generation_id, error=ERROR, seal=from_log) is None  # not running


async def test_running_answers_by_worker_and_staleness(services):
    store, chat = services.store, await chat_of(services)
    turn = await store.create_turn(chat, "hello", None, claim_for="w-contract")
    queued = await store.create_turn(chat, "queued")
    assert (turn.generation_id, chat.id, "w-contract") in await store.running_by_worker()
    assert queued.generation_id not in {g for g, _, _ in await store.running_by_worker()}
    soon = utcnow() + timedelta(seconds=5)
    assert turn.generation_id in await store.stale_running(soon, limit=10_000)
    assert turn.generation_id not in await store.stale_running(utcnow() - timedelta(hours=1))
    assert queued.generation_id not in await store.stale_running(soon, limit=10_000)
    assert chat.id not in dict(await store.stuck_sessions(soon, limit=10_000))  # one is running
    await done(store, turn.generation_id)
    assert (chat.id, queued.generation_id) in await store.stuck_sessions(soon, limit=10_000)
    assert chat.id not in dict(await store.stuck_sessions(utcnow() - timedelta(hours=1), limit=10_000))


async def test_branches_regenerate_edit_and_continue(services):
    store, chat = services.store, await chat_of(services)
    first = await store.create_turn(chat, "hello")
    user_msg = (await store.get(first.generation_id)).parent_id
    with pytest.raises(Conflict):  # still queued
        await store.create_branch(Branch(chat.user_id, chat.id, first.generation_id, "regenerate"))
    await done(store, first.generation_id)
    again = await store.create_branch(Branch(chat.user_id, chat.id, first.generation_id, "regenerate"), claim_for="w1")
    assert type(again) is Turn and again.status == "running" and again.job is not None
    assert (await store.get(again.generation_id)).parent_id == user_msg
    with pytest.raises(Conflict):  # finished with "stop": nothing to continue
        await store.create_branch(Branch(chat.user_id, chat.id, first.generation_id, "continue"))
    edit = Branch(chat.user_id, chat.id, user_msg, "edit", text="hello again", client_msg_id="e-1")
    edited = await store.create_branch(edit)
    assert (edited.status, edited.position) == ("queued", 1)
    assert (await store.create_branch(edit)).generation_id == edited.generation_id  # the same client_msg_id
    assert (await store.get(edited.generation_id)).parent_id != user_msg
    other = await chat_of(services)
    with pytest.raises(NotFound):
        await store.create_branch(Branch(other.user_id, chat.id, user_msg, "regenerate"))
    with pytest.raises(NotFound):
        await store.create_branch(Branch(chat.user_id, chat.id, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "regenerate"))


async def test_a_call_is_stored_with_its_history(services):
    store, chat = services.store, await chat_of(services)
    now = utcnow()
    values = dict(
        id=new_id(),
        user_id=chat.user_id,
        title="t",
        model_name="offline/echo",
        kind="api",
        options={"stop": ["END"]},
        temperature=0.5,
        top_p=1.0,
        max_tokens=64,
        system_prompt="be brief",
        created_at=now,
        updated_at=now,
        fallback_models=[],
    )
    history = [("user", "hi"), ("assistant", "hello")]
    turn = await store.create_call(NewCall(values, history, "and now?"), claim_for="w1")
    assert turn.job is not None and turn.job.request.stop == ("END",)
    assert [m["content"] for m in turn.job.request.messages] == ["be brief", "hi", "hello", "and now?"]
    assert (await store.get(turn.generation_id)).session_id == values["id"]
