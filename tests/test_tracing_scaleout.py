"""Traces across processes: an API replica and a worker, real subprocesses with the OTLP
exporter turned on by OTEL_* variables, export to a collector served by this test; the
worker's generation span is a child of the replica's request span (the job carried the
context). Also the workers' own /metrics port."""

import asyncio

import httpx
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tests.scaleout_support import Namespace, Proc
from tests.support import PASSWORD, free_port

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Collector:
    """An OTLP/HTTP trace receiver: keeps every span with its service name."""

    def __init__(self):
        self.spans: list[tuple[str, object]] = []
        self.port = free_port()
        app = Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    async def receive(self, request):
        body = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in body.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((service, span) for span in scope_spans.spans)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")


async def test_generation_span_on_the_worker_is_a_child_of_the_request_span(tmp_path):
    collector = Collector()
    task = asyncio.create_task(collector.server.serve())
    ns = await Namespace("traces").acreate()
    metrics_port = free_port()
    env = ns.env(
        DATA_DIR=tmp_path / "data",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.port}",
        OTEL_BSP_SCHEDULE_DELAY=100,
        TIME_BETWEEN_CHUNKS=0,
        WORKER_METRICS_PORT=metrics_port,
    )
    api = Proc.api("api", free_port(), env, tmp_path)
    worker = Proc.worker("worker", {**env, "OTEL_SERVICE_NAME": "chat-worker"}, tmp_path)
    try:
        for proc in (api, worker):
            proc.start()
        await asyncio.to_thread(api.wait_ready)
        await asyncio.to_thread(worker.wait_ready)
        async with httpx.AsyncClient(base_url=api.base, timeout=30) as c:
            await c.post("/users", json={"username": "tracy", "password": PASSWORD})
            token = (await c.post("/token", data={"username": "tracy", "password": PASSWORD})).json()["access_token"]
            r = await c.post(
                "/chat",
                json={"message": "trace me"},
                headers={"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT},
            )
            assert r.status_code == 200 and r.json()["status"] == "completed", r.text
            scraped = (await c.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert 'chat_generations_ended_total{finish_reason="stop",provider="offline",status="completed"} 1.0' in scraped
        async with asyncio.timeout(20):
            while True:
                names = {(service, span.name) for service, span in collector.spans}
                if {("llm-chat-service", "POST /chat"), ("chat-worker", "chat simulated")} <= names:
                    break
                await asyncio.sleep(0.1)
        request = next(s for svc, s in collector.spans if s.name == "POST /chat")
        generation = next(s for svc, s in collector.spans if s.name == "chat simulated")
        assert request.trace_id.hex() == TRACEPARENT.split("-")[1]
        assert generation.trace_id == request.trace_id and generation.parent_span_id == request.span_id
        attributes = {a.key: a.value for a in generation.attributes}
        assert attributes["gen_ai.provider.name"].string_value == "offline"
        assert attributes["gen_ai.usage.output_tokens"].int_value == r.json()["usage"]["completion_tokens"]
    finally:
        for proc in (api, worker):
            proc.stop()
        collector.server.should_exit = True
        await task
        await ns.adestroy()
