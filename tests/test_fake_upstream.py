"""The fake LLM upstream, exercised over real HTTP with the real openai and anthropic SDKs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from fakeupstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "say something nice"}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


# Clients are shared because building one (an SSL context each) costs more than most of these tests.
@pytest.fixture(scope="module")
def http(fake: FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url) as client:
        yield client


@pytest.fixture(autouse=True)
def _reset(http: httpx.Client) -> None:
    http.post("/_fake/reset").raise_for_status()


@pytest.fixture(scope="module")
def oai(fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)


@pytest.fixture(scope="module")
def claude(fake: FakeUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.base_url, api_key="x", max_retries=0)


def stats(http: httpx.Client) -> dict[str, Any]:
    return http.get("/_fake/stats").json()


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stream_text(oai: openai.OpenAI, model: str, **kwargs: Any) -> tuple[str, list[Any]]:
    chunks = list(oai.chat.completions.create(model=model, messages=USER, stream=True, **kwargs))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def test_openai_stream_text_usage_and_model(oai: openai.OpenAI) -> None:
    text, chunks = stream_text(oai, "fake@n=3", stream_options={"include_usage": True})
    assert text == "t0 t1 t2 "
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 3, 6)
    assert {c.model for c in chunks} == {"fake"}


def test_openai_text_option_and_max_tokens(oai: openai.OpenAI) -> None:
    assert stream_text(oai, "fake@text=Hello%2C brave  new world!")[0] == "Hello, brave  new world!"
    text, chunks = stream_text(oai, "fake@n=5", max_tokens=2)
    assert text == "t0 t1 "
    assert chunks[-1].choices[0].finish_reason == "length"
    reply = oai.chat.completions.create(model="fake@n=5", messages=USER, max_completion_tokens=3)
    assert reply.choices[0].message.content == "t0 t1 t2 "
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_ttft_and_tps_are_lower_bounds(oai: openai.OpenAI) -> None:
    started = time.monotonic()
    stream = oai.chat.completions.create(model="fake@ttft=0.2,tps=100,n=10", messages=USER, stream=True)
    arrivals = [time.monotonic() - started for c in stream if c.choices and c.choices[0].delta.content]
    assert len(arrivals) == 10
    # Measured from the request, not between tokens: a client slow on the first chunk receives the rest in a burst.
    assert arrivals[0] >= 0.2
    assert arrivals[-1] >= 0.2 + 0.08


def test_status_maps_to_sdk_errors(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(openai.RateLimitError, match="fake upstream: rate limited") as caught:
        oai.chat.completions.create(model="fake@status=429", messages=USER, stream=True)
    assert caught.value.code == "rate_limit_exceeded"
    with pytest.raises(anthropic.NotFoundError, match="fake upstream: model not found"):
        claude.messages.create(model="c@status=404", max_tokens=5, messages=USER)


def test_error_after_mid_stream(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="fake upstream error after 2 tokens"):
        for chunk in oai.chat.completions.create(model="fake@error_after=2", messages=USER, stream=True):
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "t0 t1 "
    seen.clear()
    with pytest.raises(anthropic.APIStatusError, match="fake upstream error after 3 tokens") as caught:
        with claude.messages.stream(model="c@error_after=3", max_tokens=50, messages=USER) as stream:
            seen.extend(stream.text_stream)
    assert "".join(seen) == "t0 t1 t2 "
    # An in-stream error reaches anthropic's callers as a status error bearing the stream's HTTP status.
    assert caught.value.status_code == 200


def test_raw_wire_formats(http: httpx.Client) -> None:
    body = {"model": "m@n=2", "stream": True, "messages": USER}
    with http.stream("POST", "/v1/messages", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event: ")]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line]
    assert len(lines) == 5 and all(line.startswith("data: {") for line in lines[:-1])
    assert lines[-1] == "data: [DONE]"


def test_fail_times_then_success(fake: FakeUpstream, http: httpx.Client) -> None:
    retrying = openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=1)
    reply = retrying.chat.completions.create(model="fake@fail_times=1,n=2", messages=USER)
    assert reply.choices[0].message.content == "t0 t1 "
    assert stats(http)["requests"] == 2
    body = {"model": "fake@fail_times=2,status=500,n=1", "messages": USER}
    codes = [http.post("/v1/chat/completions", json=body).status_code for _ in range(3)]
    assert codes == [500, 500, 200]


def test_loop_until_client_closes_counts_disconnect(oai: openai.OpenAI, http: httpx.Client) -> None:
    stream = oai.chat.completions.create(model="fake@loop=1", messages=USER, stream=True)
    words = []
    for chunk in stream:
        words.append(chunk.choices[0].delta.content or "")
        if len(words) > 200:
            break
    stream.close()
    assert "".join(words).startswith("I am stuck in a loop. I am stuck in a loop. ")
    assert wait_for(lambda: stats(http)["disconnected"] >= 1)
    assert stats(http)["active"] == 0


@pytest.mark.parametrize("streamed", [True, False])
def test_endless_stall_with_client_timeout_counts_disconnect(
    fake: FakeUpstream, http: httpx.Client, streamed: bool
) -> None:
    impatient = openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        reply = impatient.chat.completions.create(model="fake@stall_after=2", messages=USER, stream=streamed)
        for _ in reply:
            pass
    assert wait_for(lambda: stats(http)["disconnected"] == 1)
    assert stats(http)["completed"] == 0


def test_finite_stall_and_slow_close_delay_but_finish(oai: openai.OpenAI, http: httpx.Client) -> None:
    started = time.monotonic()
    text, chunks = stream_text(oai, "fake@n=3,stall_after=1,stall=0.2,slow_close=0.2")
    assert text == "t0 t1 t2 "
    assert time.monotonic() - started >= 0.4
    assert stats(http)["completed"] == 1


def test_anthropic_stream_records_system_and_stops_at_max_tokens(
    claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    system = [{"type": "text", "text": "You are a fake."}]
    with claude.messages.stream(model="claude-fake@n=5", max_tokens=4, system=system, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "t0 t1 t2 t3 "
    assert final.stop_reason == "max_tokens"
    assert final.model == "claude-fake"
    assert final.usage.input_tokens == 7 and final.usage.output_tokens == 4
    last = stats(http)["last_request"]
    assert last["system"] == system and last["max_tokens"] == 4 and last["model"] == "claude-fake@n=5"
    reply = claude.messages.create(model="claude-fake@n=2", max_tokens=50, messages=USER)
    assert reply.content[0].text == "t0 t1 " and reply.stop_reason == "end_turn"


def test_runtime_default_behaviour(oai: openai.OpenAI, http: httpx.Client) -> None:
    assert http.post("/_fake/behaviour", json={"n": 4, "text": "a b c"}).status_code == 200
    assert stream_text(oai, "fake-model")[0] == "a b c"
    assert stream_text(oai, "fake-model@text=x y")[0] == "x y"
    assert http.post("/_fake/behaviour", json={}).status_code == 200
    assert stream_text(oai, "fake-model")[0] == "".join(f"t{i} " for i in range(20))
    assert http.post("/_fake/behaviour", json={"nope": 1}).status_code == 400
    with pytest.raises(openai.BadRequestError, match="unknown behaviour option 'speed'"):
        oai.chat.completions.create(model="fake@speed=3", messages=USER)


def test_api_key_enforced() -> None:
    with FakeUpstream(api_key="sekrit") as fake:
        with pytest.raises(openai.AuthenticationError, match="fake upstream: invalid api key"):
            openai.OpenAI(base_url=fake.openai_base_url, api_key="wrong", max_retries=0).models.list()
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(base_url=fake.base_url, api_key="wrong", max_retries=0).messages.create(
                model="c", max_tokens=5, messages=USER
            )
        good = openai.OpenAI(base_url=fake.openai_base_url, api_key="sekrit")
        assert good.chat.completions.create(model="m@n=1", messages=USER).choices[0].message.content == "t0 "
        reply = anthropic.Anthropic(base_url=fake.base_url, api_key="sekrit").messages.create(
            model="c@n=1", max_tokens=5, messages=USER
        )
        assert reply.content[0].text == "t0 "
        headers = {"x-api-key": "sekrit", "anthropic-version": "2023-06-01"}
        assert httpx.get(f"{fake.base_url}/v1/models", headers=headers).status_code == 200
        headers["x-api-key"] = "wrong"
        refused = httpx.get(f"{fake.base_url}/v1/models", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def test_models_in_both_formats(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    assert [m.id for m in oai.models.list()] == ["fake-model", "fake-model-2"]
    page = claude.models.list()
    assert [(m.id, m.type) for m in page.data] == [("fake-model", "model"), ("fake-model-2", "model")]
    assert page.first_id == "fake-model" and page.last_id == "fake-model-2" and page.has_more is False


def test_cli_prints_its_address_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakeupstream", "--port", "0", "--models", "a,b"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("fake upstream listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1]
        assert [m["id"] for m in httpx.get(f"{base_url}/v1/models").json()["data"]] == ["a", "b"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
