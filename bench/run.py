"""The benchmark suite, end to end, in one command:

    .venv/bin/python -m bench.run            # full suite, under ten minutes on 2 cores
    .venv/bin/python -m bench.run --quick    # smoke test, under a minute; never fails on a timing

Starts the fake upstream, the service instances and the load generators as separate
processes (pinned to separate cores where the machine has them), runs every load shape in
interleaved rounds over (A) the upstream directly, (B) the service over WebSocket and (C) the
service over SSE, and writes bench/results/results.{json,md,svg}. See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import compare, peer, report  # noqa: E402
from bench.proc import (
    PYTHON,
    ROOT,
    Proc,
    cores,
    http_json,
    loadavg,
    log,
    raise_fd_limit,  # noqa: E402
    start_fake,
    start_service,
)
from bench.shapes import Shapes  # noqa: E402
from bench.stats import LATE_MS, TTFT_LIMIT_MS, run_figures, spread, summarize  # noqa: E402

PASSWORD = "correct-horse-battery"
OPS_OFF = {"LOG_FORMAT": "text", "METRICS_ENABLED": "false"}
OPS_ON = {"LOG_FORMAT": "json", "METRICS_ENABLED": "true"}
RESULTS = ROOT / "bench" / "results"
FIGURES = [
    "cpu_us_per_token",
    "cpu_ms_per_generation",
    "tokens_per_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "lateness_p99_ms",
    "fell_behind",
    "sustained",
    "tokens_per_frame",
    "fake_cpu_us_per_token",
    "loadgen_cpu_share",
]

# variant -> (service instance, client mode, client offers permessage-deflate)
VARIANTS = {
    "direct": (None, "direct", False),
    "ws": ("main", "ws", False),
    "sse": ("main", "sse", False),
    "ws+coalesce": ("coalesce", "ws", False),
    "sse+coalesce": ("coalesce", "sse", False),
    "v1chat": ("main", "v1chat", False),  # POST /v1/chat/completions, stream
    "v1resp": ("main", "v1resp", False),  # POST /v1/responses, stream
    "ws+deflate": ("deflate", "ws", True),
    # --ops: metrics scraped and JSON logs on (the other instances run with both off)
    "ws+ops": ("ops", "ws", False),
    "sse+ops": ("ops", "sse", False),
    # --baseline TREE: the same service from another copy of the tree, interleaved in the same rounds
    "ws@baseline": ("baseline", "ws", False),
    "sse@baseline": ("baseline", "sse", False),
    # the floor (bench/minimal_relay.py): the same transports with no auth, database or history
    "ws@floor": ("floor", "ws", False),
    "sse@floor": ("floor", "sse", False),
    # --peer litellm: the LiteLLM proxy in front of the same upstream, read as an OpenAI stream
    "litellm": ("litellm", "direct", False),
}
UNAUTHENTICATED = {"floor", "litellm"}  # no users, sessions or cancel frames
PEER_SHAPES = ("one_stream", "paced_200x50", "unpaced")

FULL = {
    "rounds": 2,
    "one_stream": {"rounds": 3, "generations": 12, "tps": 100, "n": 20},
    "paced_200x50": {
        "streams": 200,
        "tps": 50,
        "n": 100,
        "ramp": 1.0,
        "grace": 2.0,
        "procs": 1,
        "variants": ["direct", "ws", "sse", "ws+coalesce", "sse+coalesce"],
    },
    "paced_1000x25": {
        "streams": 1000,
        "tps": 25,
        "n": 50,
        "ramp": 2.0,
        "grace": 2.0,
        "procs": 2,
        "variants": ["direct", "ws", "sse", "ws+coalesce", "sse+coalesce"],
    },
    "unpaced": {
        "streams": 20,
        "tps": 0,
        "n": 1500,
        "ramp": 0.0,
        "cutoff": 5.0,
        "procs": 1,
        "variants": ["direct", "ws", "sse", "ws+deflate"],
    },
    "ramp": {
        "streams": 150,
        "tps": 25,
        "n": 50,
        "seconds": 10.0,
        "grace": 2.0,
        "procs": 1,
        "variants": ["direct", "ws", "sse"],
    },
    "idle": {"connections": 2000},
    "stall": {"seconds": 5.0, "tps": 1000, "n": 20000},
    "scaleout": {"args": ["--concurrency", "10", "--tokens", "200"], "timeout": 120},
    "openai_200x50": {
        "streams": 200,
        "tps": 50,
        "n": 100,
        "ramp": 1.0,
        "grace": 2.0,
        "procs": 1,
        "rounds": 4,
        "variants": ["sse", "v1chat", "v1resp"],
    },
}
QUICK = {
    "rounds": 1,
    "one_stream": {"rounds": 1, "generations": 3, "tps": 200, "n": 10},
    "paced_200x50": {
        "streams": 20,
        "tps": 50,
        "n": 20,
        "ramp": 0.2,
        "grace": 1.5,
        "procs": 1,
        "variants": ["direct", "ws", "sse", "ws+coalesce", "sse+coalesce"],
    },
    "paced_1000x25": {
        "streams": 40,
        "tps": 25,
        "n": 10,
        "ramp": 0.2,
        "grace": 1.5,
        "procs": 2,
        "variants": ["direct", "ws", "sse", "ws+coalesce", "sse+coalesce"],
    },
    "unpaced": {
        "streams": 4,
        "tps": 0,
        "n": 200,
        "ramp": 0.0,
        "cutoff": 3.0,
        "procs": 1,
        "variants": ["direct", "ws", "sse", "ws+deflate"],
    },
    "ramp": {
        "streams": 12,
        "tps": 50,
        "n": 10,
        "seconds": 1.0,
        "grace": 1.5,
        "procs": 1,
        "variants": ["direct", "ws", "sse"],
    },
    "idle": {"connections": 60},
    "stall": {"seconds": 1.0, "tps": 1000, "n": 5000},
    "scaleout": None,  # minutes, and PostgreSQL/Redis/RabbitMQ: full runs only
    "openai_200x50": {
        "streams": 20,
        "tps": 50,
        "n": 20,
        "ramp": 0.2,
        "grace": 1.5,
        "procs": 1,
        "variants": ["sse", "v1chat", "v1resp"],
    },
}


class Bench(Shapes):
    def __init__(self, args):
        self.args = args
        self.plan = QUICK if args.quick else FULL
        self.work = Path(tempfile.mkdtemp(prefix="bench-"))
        cpus = cores()
        self.cpus = cpus
        # Service on the first core; upstream and load generators on the others (on the
        # service's core too when only A runs, the service then being idle).
        self.cpu_service = {cpus[0]} if len(cpus) > 1 else None
        self.cpu_side = set(cpus[1:]) if len(cpus) > 1 else None
        self.services: dict[str, Proc] = {}
        self.tokens: dict[str, str] = {}
        self.pools: dict[str, list[str]] = {}
        self.fake: Proc | None = None
        self.fake_url = ""
        self.results: dict = {"meta": {}, "shapes": {}}
        self.errors: list[str] = []
        self.restarts: list[str] = []

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        self.fake, self.fake_url = start_fake(self.work, self.cpu_side, ["fake-model"])
        log(f"fake upstream {self.fake_url} (pid {self.fake.pid}, cpus {self.cpu_side})")
        specs = {
            "main": dict(deflate=False),
            "coalesce": dict(deflate=False, env={"COALESCE_WINDOW_MS": "20"}),
            "deflate": dict(deflate=True),
            "floor": dict(deflate=False, app="bench.minimal_relay:app"),
        }
        if self.args.baseline:
            specs["baseline"] = dict(deflate=False, root=Path(self.args.baseline).resolve())
        if self.args.ops:
            for spec in specs.values():
                spec["env"] = {**spec.get("env", {}), **OPS_OFF}
            specs["ops"] = dict(deflate=False, env=OPS_ON)
        with ThreadPoolExecutor(len(specs)) as pool:
            # started on every core (imports and migrations go faster), pinned once healthy
            futs = {
                name: pool.submit(start_service, name, self.work, self.fake_url, None, **kw)
                for name, kw in specs.items()
            }
            for name, fut in futs.items():
                svc = self.services[name] = fut.result()
                svc.cpus = self.cpu_service
                svc.repin()
        if self.args.peer:
            self.services["litellm"] = peer.start(self.args.peer, self.work, self.fake_url, self.cpu_service)
        for name, svc in self.services.items():
            if name in UNAUTHENTICATED:
                self.tokens[name], self.pools[name] = svc.extra.get("token", ""), []
                continue
            base = svc.extra["base"]
            http_json("POST", f"{base}/users", {"username": "bench", "password": PASSWORD})
            status, body = http_json("POST", f"{base}/token", form={"username": "bench", "password": PASSWORD})
            if status != 200:
                raise RuntimeError(f"{name}: login failed: {body}")
            self.tokens[name] = body["access_token"]
            self.pools[name] = []
            log(f"service {name}: {svc.extra['cmd']} env {svc.extra['env']} (pid {svc.pid})")

    def new_sessions(self, name: str, n: int, max_tokens: int = 131072) -> list[str]:
        base, token = self.services[name].extra["base"], self.tokens[name]

        def one(_):
            status, body = http_json(
                "POST", f"{base}/set-llm", {"max_tokens": max_tokens}, {"Authorization": f"Bearer {token}"}
            )
            if status != 201:
                raise RuntimeError(f"set-llm failed: {status} {body}")
            return body["session_id"]

        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(one, range(n)))

    def sessions(self, name: str, n: int) -> list[str]:
        """n idle sessions, reused across rounds (each round's generations end before the next)."""
        pool = self.pools[name]
        if len(pool) < n:
            pool += self.new_sessions(name, n - len(pool))
        return pool[:n]

    def behaviour(self, **options) -> None:
        status, body = http_json("POST", f"{self.fake_url}/_fake/behaviour", options)
        if status != 200:
            raise RuntimeError(f"fake behaviour refused: {body}")

    # ------------------------------------------------------------ one run of a stream shape

    def run(
        self,
        variant: str,
        arrivals: list[float],
        tps: float,
        n: int,
        cutoff: float,
        procs: int = 1,
        sequential: bool = False,
        ttft: float = 0.0,
        fresh: bool = False,
    ) -> dict:
        name, mode, deflate = VARIANTS[variant]
        svc = self.services.get(name) if name else None
        count = len(arrivals)
        if svc is None or name in UNAUTHENTICATED:
            sessions = [f"floor-{i}" for i in range(count)]
        elif fresh:
            sessions = self.new_sessions(name, count)
        else:
            sessions = self.sessions(name, count)
        self.behaviour(tps=tps, n=n, ttft=ttft)
        procs = max(1, min(procs, count))
        lg_cpus = self.cpu_side if svc else self.cpu_service
        runners = []
        for p in range(procs):
            idx = list(range(p, count, procs))
            upstream = svc.extra["base"] if name == "litellm" else self.fake_url
            spec = {
                "kind": "streams",
                "mode": mode,
                "deflate": deflate,
                "fake": upstream,
                "service": svc.extra["base"] if svc else "",
                "token": self.tokens.get(name or "", ""),
                "sessions": [sessions[i] for i in idx],
                "arrivals": [arrivals[i] for i in idx],
                "cutoff": cutoff,
                "sequential": sequential,
                "max_tokens": 131072,
                "admission": self.args.sse_admission,
            }
            spec_path = self.work / f"spec-{p}.json"
            out_path = self.work / f"out-{p}.json"
            spec_path.write_text(json.dumps(spec))
            out_path.unlink(missing_ok=True)
            cpus = lg_cpus
            proc = subprocess.Popen(
                [PYTHON, "-m", "bench.loadgen", str(spec_path), str(out_path)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=(lambda c=cpus: os.sched_setaffinity(0, c)) if cpus else None,
            )
            runners.append((proc, out_path))
        for proc, _ in runners:
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                proc.wait(10)
                raise RuntimeError(f"load generator failed to connect ({variant}): {line!r}")
        start_at = time.monotonic() + 0.3
        svc_cpu0 = svc.cpu() if svc else 0.0
        fake_cpu0 = self.fake.cpu()
        for proc, _ in runners:
            proc.stdin.write(f"go {start_at}\n")
            proc.stdin.flush()
        scraping = threading.Event()
        if name == "ops":  # a Prometheus scraping every second, as its cost is part of "on"
            threading.Thread(target=_scrape, args=(svc.extra["base"], scraping), daemon=True).start()
        outs = []
        try:
            for proc, out_path in runners:
                proc.wait(cutoff + 120)
                if proc.returncode != 0:
                    raise RuntimeError(f"load generator exited {proc.returncode} ({variant})")
                outs.append(json.loads(out_path.read_text()))
        finally:
            scraping.set()
        svc_cpu1 = svc.cpu() if svc else 0.0
        fake_cpu1 = self.fake.cpu()
        window = max(o["elapsed_s"] for o in outs)
        gens = [g for o in outs for g in o["generations"]]
        fig = run_figures(gens, tps, n, ttft)
        tokens = fig["tokens"]
        fig.update(
            {
                "variant": variant,
                "window_s": round(window, 3),
                "cpu_us_per_token": (svc_cpu1 - svc_cpu0) / tokens * 1e6 if svc and tokens else None,
                "service_cpu_s": round(svc_cpu1 - svc_cpu0, 3) if svc else None,
                "cpu_ms_per_generation": (svc_cpu1 - svc_cpu0) / len(gens) * 1e3 if svc and gens else None,
                "service_cpu_share": round((svc_cpu1 - svc_cpu0) / window, 3) if svc and window else None,
                "fake_cpu_us_per_token": (fake_cpu1 - fake_cpu0) / tokens * 1e6 if tokens else None,
                "tokens_per_s": tokens / window if window else None,
                "loadgen_cpu_share": round(max(o["loadgen_cpu_s"] / max(o["elapsed_s"], 1e-9) for o in outs), 3),
                "loadgen_procs": procs,
            }
        )
        if svc:
            self.drain(name, gens)
        return fig

    def drain(self, name: str, gens: list[dict]) -> None:
        """Cancels what the cutoff left running and waits for the service to go idle, so
        no round pays for the previous one."""
        base, token = self.services[name].extra["base"], self.tokens[name]
        left = [
            g["generation_id"]
            for g in gens
            if name not in UNAUTHENTICATED
            and g.get("generation_id")
            and g["status"] not in ("completed", "cancelled", "failed", "incomplete")
        ]
        if left:
            spec = {
                "kind": "cancel",
                "service": base,
                "token": token,
                "sessions": self.sessions(name, 1),
                "generation_ids": left,
                "linger": 0.5,
            }
            sp, op = self.work / "cancel.json", self.work / "cancel-out.json"
            sp.write_text(json.dumps(spec))
            subprocess.run(
                [PYTHON, "-m", "bench.loadgen", str(sp), str(op)], cwd=ROOT, timeout=120, stdout=subprocess.DEVNULL
            )
        svc = self.services[name]
        deadline = time.monotonic() + (3 if left else 6)
        last = svc.cpu()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = svc.cpu()
            if now - last < 0.025:  # under 10% of a core: idle
                return
            last = now
        if name == "litellm":  # no /health to restart against: let it dig out instead
            log("  (peer litellm still busy after the run)")
            return
        # Still busy (an overloaded embedded service can take minutes to dig out, its DB pool
        # timing out): start it afresh rather than let the next run pay for this one.
        svc.restart()
        self.restarts.append(name)
        log(f"  (service {name} restarted: still busy after its cancels)")

    # ------------------------------------------------------------ shapes

    def shape_rounds(self, key: str, variants: list[str], rounds: int, make) -> dict:
        """Interleaved rounds: each round runs every variant once, the order rotating."""
        variants = [x for v in variants for x in (v, f"{v}@floor") if x in VARIANTS]
        if self.args.baseline and key in ("one_stream", "paced_200x50", "unpaced"):
            variants = list(variants) + ["ws@baseline", "sse@baseline"]
        if self.args.peer and key in PEER_SHAPES:
            variants = list(variants) + ["litellm"]
        if self.args.ops and key in ("one_stream", "paced_200x50"):
            variants = list(variants) + ["ws+ops", "sse+ops"]
        per: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for v in order:
                t0 = time.monotonic()
                try:
                    fig = make(v)
                except Exception as exc:  # a broken variant is reported, the suite goes on
                    self.errors.append(f"{key}/{v}: {type(exc).__name__}: {exc}")
                    log(f"  {key} {v} FAILED: {exc}")
                    continue
                per[v].append(fig)
                log(f"  {key} r{r + 1} {v:<13} {_brief(fig)} ({time.monotonic() - t0:.1f}s)")
        out = {"variants": {}}
        for v, figs in per.items():
            out["variants"][v] = {"rounds": figs, "summary": summarize(figs, FIGURES)}
        out["added"] = added_over_direct(per)
        out["vs_floor"] = compare.ratios(per, compare.floor_pairs(per, floor_of))
        if "litellm" in per:
            out["vs_peer"] = compare.ratios(per, compare.peer_pairs(per))
        return out

    def warm_up(self) -> None:
        """Imports, lazy schemas, connection pools: one short run of each variant, not measured."""
        variants = ["direct", "ws", "sse", "ws+coalesce", "sse+coalesce", "ws+deflate", "ws@floor", "sse@floor"]
        if self.args.peer:
            variants.append("litellm")
        if self.args.baseline:
            variants += ["ws@baseline", "sse@baseline"]
        if self.args.ops:
            variants += ["ws+ops", "sse+ops"]
        for v in variants:
            self.run(v, [i * 0.02 for i in range(2 if self.args.quick else 8)], 0, 30, cutoff=10)

    # ------------------------------------------------------------ main

    def main(self) -> int:
        t0 = time.monotonic()
        self.results["meta"] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": self.args.quick,
            "machine": {
                "cores": os.cpu_count(),
                "affinity": self.cpus,
                "python": platform.python_version(),
                "loadavg_start": loadavg(),
            },
            "pinning": {
                "service": sorted(self.cpu_service or []),
                "fake_upstream": sorted(self.cpu_side or []),
                "loadgen_service_modes": sorted(self.cpu_side or []),
                "loadgen_direct_mode": sorted(self.cpu_service or []),
            },
            "definitions": {"late_ms": LATE_MS, "ttft_limit_ms": TTFT_LIMIT_MS},
            "command": " ".join([".venv/bin/python -m bench.run", *sys.argv[1:]]),
            "baseline": self.args.baseline or None,
        }
        ok = False
        try:
            raise_fd_limit()
            self.setup()
            self.results["meta"]["services"] = {
                n: {"cmd": s.extra["cmd"], "env": s.extra["env"]} for n, s in self.services.items()
            }
            log("warm-up")
            self.warm_up()
            steps = [
                ("one stream", self.one_stream),
                ("idle connections", self.idle),
                ("stalled reader", self.stall),
                ("200 x 50 tok/s", lambda: self.paced("paced_200x50")),
                ("1000 x 25 tok/s", lambda: self.paced("paced_1000x25")),
                ("unpaced", self.unpaced),
                ("ramped arrivals", self.ramp),
                ("scale-out", self.scaleout),
                ("OpenAI /v1 200 x 50 tok/s", lambda: self.paced("openai_200x50")),
            ]
            only = set(self.args.only.split(",")) if self.args.only else None
            for title, step in steps:
                if only and not any(o in title.replace(" ", "") or o in title for o in only):
                    continue
                log(f"{title}")
                try:
                    step()
                except Exception as exc:
                    self.errors.append(f"{title}: {type(exc).__name__}: {exc}")
                    log(f"  {title} FAILED: {type(exc).__name__}: {exc}")
            ok = True
        finally:
            for svc in self.services.values():
                svc.stop()
            if self.fake:
                self.fake.stop()
            self.results["meta"]["elapsed_s"] = round(time.monotonic() - t0, 1)
            self.results["meta"]["loadavg_end"] = loadavg()
            self.results["errors"] = self.errors
            self.results["meta"]["service_restarts"] = self.restarts
            self.results["budget"] = report.budget(self.results)
            out = Path(self.args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps(self.results, indent=1, default=str))
            (out / "results.md").write_text(report.markdown(self.results))
            (out / "results.svg").write_text(report.svg(self.results))
            log(f"wrote {out / 'results.json'}, results.md, results.svg in {self.results['meta']['elapsed_s']}s")
            print(report.markdown(self.results, brief=True))
            if ok and not self.args.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            else:
                log(f"process logs kept in {self.work}")
        return 1 if self.errors else 0


def added_over_direct(per: dict[str, list[dict]]) -> dict:
    """Per round, each service variant's figure minus the direct one of the same round."""
    direct = per.get("direct") or []
    out = {}
    for v, figs in per.items():
        if v == "direct" or not direct:
            continue
        out[v] = {}
        # zip not strict: a variant with a failed round has fewer; the rounds both have are compared.
        for key in ("ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "lateness_p99_ms"):
            diffs = [
                f[key] - d[key]
                for f, d in zip(figs, direct, strict=False)
                if f.get(key) is not None and d.get(key) is not None
            ]
            out[v][key] = spread(diffs)
        # Ratios (the headline): service over direct, per round, for what a user feels.
        for key in ("tokens_per_s", "ttft_p50_ms", "ttft_p99_ms"):
            ratios = [
                f[key] / d[key] for f, d in zip(figs, direct, strict=False) if f.get(key) is not None and d.get(key)
            ]
            out[v][f"ratio_{key}"] = spread(ratios)
    return out


def floor_of(variant: str) -> str | None:
    """The floor variant a service variant is compared with: the same transport."""
    for transport in ("ws", "sse"):
        if variant == transport or variant.startswith(f"{transport}+") or variant == f"{transport}@baseline":
            return f"{transport}@floor"
    return None


def _scrape(base: str, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            urllib.request.urlopen(f"{base}/metrics", timeout=5).read()
        except OSError:
            pass


def _brief(f: dict) -> str:
    def g(k, fmt="{:.1f}"):
        return fmt.format(f[k]) if f.get(k) is not None else "-"

    return (
        f"tokens {f['tokens']:>6} cpu/tok {g('cpu_us_per_token'):>6}us  tok/s {g('tokens_per_s', '{:.0f}'):>6} "
        f"ttft p50/p99 {g('ttft_p50_ms')}/{g('ttft_p99_ms')}ms itl p99 {g('itl_p99_ms')}ms "
        f"behind {f.get('fell_behind')} lg {f.get('loadgen_cpu_share')}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes, under a minute")
    ap.add_argument("--out", default=str(RESULTS), help="where results.{json,md,svg} go")
    ap.add_argument("--only", default="", help="comma-separated step names (e.g. onestream,idle,200)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument(
        "--baseline",
        default="",
        help="path of another copy of the tree (with its .venv): its service runs beside this "
        "one and its ws/sse variants are interleaved in the same rounds (before/after)",
    )
    ap.add_argument(
        "--ops",
        action="store_true",
        help="add ws+ops / sse+ops: an instance with JSON logs and /metrics scraped every "
        "second, the others with both off (issue 16: within 3%% of CPU per token)",
    )
    ap.add_argument(
        "--sse-admission",
        type=int,
        default=0,
        help="SSE clients: at most this many POST /chat awaiting response headers, per load "
        "generator (0: unlimited, the default since the service no longer nests pooled "
        "DB connections on that route; see README)",
    )
    ap.add_argument(
        "--peer",
        choices=["litellm"],
        default="",
        help="also run the LiteLLM proxy (bench/requirements-peer.txt, installed into bench/.venv-peer "
        "on first use) in front of the same upstream, in the same rounds",
    )
    args = ap.parse_args(argv)

    def stop(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the cleanup finish
        raise KeyboardInterrupt  # so the finally blocks stop the child processes

    import signal

    signal.signal(signal.SIGTERM, stop)
    return Bench(args).main()


if __name__ == "__main__":
    sys.exit(main())
