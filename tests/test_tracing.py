"""OpenTelemetry: spans per request and per generation with the GenAI attributes, linked
through the job, recorded by an in-memory exporter; off by default."""

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.observability import tracing
from services.scaleout.rabbit_dispatch import job_body
from tests.support import new_session

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = TRACEPARENT[:-2] + "00"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


def test_off_unless_the_otel_variables_ask():
    assert not tracing.enabled()
    assert not tracing.enabled_by_env({})
    assert tracing.enabled_by_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.enabled_by_env({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.enabled_by_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"})
    assert not tracing.enabled_by_env({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})


async def test_request_and_generation_spans_are_linked(spans, upstream, up):
    sid = await new_session(up, upstream.token)
    r = await up.post("/chat", json={"session_id": sid, "message": "trace me"}, headers={"traceparent": TRACEPARENT})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    finished = {s.name: s for s in spans.get_finished_spans()}
    http = finished["POST /chat"]
    gen = finished["chat fake-model"]
    assert format(http.context.trace_id, "032x") == TRACEPARENT.split("-")[1]  # continues the caller's trace
    assert gen.context.trace_id == http.context.trace_id and gen.parent.span_id == http.context.span_id
    assert http.attributes["http.route"] == "/chat" and http.attributes["http.response.status_code"] == 200
    usage = r.json()["usage"]
    assert dict(gen.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "fake-model",
        "gen_ai.response.model": "fake-model",
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "gen_ai.response.finish_reasons": ("stop",),
        "chat.generation_id": r.json()["generation_id"],
        "chat.status": "completed",
    }


def test_a_request_its_caller_did_not_sample_ends_cleanly(spans):
    """A traceparent flagged not sampled (00) gets a non-recording span, which has no name:
    ending it must not raise (it did, in the HTTP middleware's finally, after the answer)."""
    span, token = tracing.start_http("GET", [(b"traceparent", UNSAMPLED.encode())])
    tracing.end_http(span, token, "/sessions", 200)
    assert not spans.get_finished_spans()


def test_the_job_carries_the_trace_context_to_the_worker(spans):
    """API replica: the context captured at submit goes into the job body; worker: the body's
    context parents the generation's span."""
    from opentelemetry import context, propagate

    ctx = propagate.extract({"traceparent": TRACEPARENT})
    token = context.attach(ctx)
    try:
        tracing.capture("G1")
    finally:
        context.detach(token)
    body = json.loads(job_body("S1", "G1", tracing.carrier("G1")))
    assert body["trace"]["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert tracing.carrier("G1") is None  # handed on, not kept
    tracing.adopt("G1", body["trace"])  # what the worker does with a job
    span = tracing.start_generation("G1", "openai/gpt-x")
    tracing.end_generation(
        span, "openai/gpt-x-2", "completed", "stop", {"prompt_tokens": 1, "completion_tokens": 2}, None
    )
    (done,) = spans.get_finished_spans()
    assert format(done.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert done.attributes["gen_ai.response.model"] == "gpt-x-2"
    assert json.loads(job_body("S1", "G2", None)) == {"session_id": "S1", "generation_id": "G2"}
