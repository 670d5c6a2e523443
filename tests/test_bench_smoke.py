"""The benchmark suite's quick mode runs end to end and writes its results. A smoke test of
the benchmark itself: it asserts that the suite works, never how fast anything is."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {"one_stream", "paced_200x50", "paced_1000x25", "unpaced", "ramp"}
RUN_FIGURES = {
    "cpu_us_per_token",
    "tokens_per_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "fell_behind",
    "tokens",
}


@pytest.mark.timeout(600)
def test_quick_benchmark_runs_and_writes_results(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().startswith("# Benchmark results")
    assert (out / "results.svg").read_text().startswith("<svg")

    assert {"meta", "shapes", "idle_ws", "stalled_reader", "scaleout", "budget", "errors"} <= results.keys()
    assert results["errors"] == []
    assert SHAPES <= results["shapes"].keys()
    for name in SHAPES:
        shape = results["shapes"][name]
        assert {"direct", "ws", "sse"} <= shape["variants"].keys(), name
        for variant, data in shape["variants"].items():
            assert data["rounds"], (name, variant)
            assert RUN_FIGURES <= data["rounds"][0].keys(), (name, variant)
        assert {"ws", "sse"} <= shape["added"].keys(), name
        # the floor (bench/minimal_relay.py) ran beside the service, and each figure has its ratio to it
        assert {"ws@floor", "sse@floor"} <= shape["variants"].keys(), name
        for variant in ("ws", "sse"):
            floor = shape["vs_floor"][variant]
            assert floor["over"] == f"{variant}@floor", name
            assert floor["ratio_tokens_per_s"]["median"] > 0, (name, variant)
    openai_shape = results["shapes"]["openai_200x50"]["variants"]  # the /v1 routes against native SSE
    assert {"sse", "v1chat", "v1resp"} <= openai_shape.keys()
    for variant in ("v1chat", "v1resp"):
        assert openai_shape[variant]["rounds"][0]["tokens"] > 0, variant
    assert results["idle_ws"]["connections"] > 0 and "kib_per_connection" in results["idle_ws"]
    for case in ("control", "stalled"):
        assert results["stalled_reader"][case]["samples_mib"], case
    assert "## Against the floor" in (out / "results.md").read_text()
    assert {b["item"] for b in results["budget"]} and all("met" in b for b in results["budget"])
