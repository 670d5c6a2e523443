"""The load shapes of the benchmark suite (bench/run.py): one stream, paced, unpaced, ramped,
idle connections, a stalled reader and the scale-out comparison. A mixin of `Bench`, which
provides the services, sessions, `run` and `shape_rounds` they use; each shape writes its
figures into `self.results`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from bench import report
from bench.proc import PYTHON, ROOT, http_json, log
from bench.stats import LATE_MS, TTFT_LIMIT_MS, median


class Shapes:
    def one_stream(self) -> None:
        p = self.plan["one_stream"]
        gens = p["generations"]
        per_gen = p["n"] / p["tps"] + 1.0
        res = self.shape_rounds(
            "one_stream",
            ["direct", "ws", "sse"],
            p["rounds"],
            lambda v: self.run(
                v, [0.0] * gens, p["tps"], p["n"], cutoff=gens * per_gen + 5, sequential=True, fresh=True
            ),
        )
        res["params"] = {**p, "note": "one stream at a time; each generation on a fresh connection and session"}
        self.results["shapes"]["one_stream"] = res

    def paced(self, key: str) -> None:
        p = self.plan[key]
        count, tps, n = p["streams"], p["tps"], p["n"]
        arrivals = [i * p["ramp"] / count for i in range(count)]
        cutoff = p["ramp"] + n / tps + p["grace"]
        res = self.shape_rounds(
            key,
            p["variants"],
            p.get("rounds", self.plan["rounds"]),
            lambda v: self.run(v, arrivals, tps, n, cutoff, procs=p["procs"]),
        )
        res["params"] = {
            **p,
            "cutoff_s": cutoff,
            "note": f"{count} streams x {tps} tokens/s x {n} tokens, arrivals spread evenly over "
            f"{p['ramp']}s; a stream falls behind when a token is > {LATE_MS:.0f} ms late "
            f"or its TTFT > {TTFT_LIMIT_MS:.0f} ms or it is not done by the cutoff",
        }
        self.results["shapes"][key] = res

    def unpaced(self) -> None:
        p = self.plan["unpaced"]
        res = self.shape_rounds(
            "unpaced",
            p["variants"],
            p.get("rounds", self.plan["rounds"]),
            lambda v: self.run(v, [0.0] * p["streams"], 0, p["n"], p["cutoff"], procs=p["procs"]),
        )
        res["params"] = {**p, "note": "upstream as fast as it goes; tokens_per_s is the ceiling"}
        self.results["shapes"]["unpaced"] = res

    def ramp(self) -> None:
        p = self.plan["ramp"]
        count, secs = p["streams"], p["seconds"]
        # arrival rate rising linearly from 0: the i-th arrival at T*sqrt(i/N)
        arrivals = [secs * (i / count) ** 0.5 for i in range(count)]
        cutoff = secs + p["n"] / p["tps"] + p["grace"]

        def make(v):
            fig = self.run(v, arrivals, p["tps"], p["n"], cutoff, procs=p["procs"])
            return fig

        res = self.shape_rounds("ramp", p["variants"], 1, make)
        res["params"] = {
            **p,
            "peak_arrivals_per_s": round(2 * count / secs, 1),
            "note": f"arrival rate rising linearly from 0 to {2 * count / secs:.0f}/s over {secs}s",
        }
        self.results["shapes"]["ramp"] = res

    def idle(self) -> None:
        self._idle("main", "idle_ws", False)
        self._idle("deflate", "idle_ws_deflate", True)

    def _idle(self, name: str, key: str, deflate: bool) -> None:
        """N idle authenticated WebSockets: RSS delta / N of the service process."""
        count = self.plan["idle"]["connections"]
        svc = self.services[name]
        sessions = self.sessions(name, 20)
        spec = {
            "kind": "idle",
            "service": svc.extra["base"],
            "token": self.tokens[name],
            "sessions": sessions,
            "count": count,
            "deflate": deflate,
        }
        spec_path, out_path = self.work / "idle.json", self.work / "idle-out.json"
        spec_path.write_text(json.dumps(spec))
        # a few connections first, so code paths and pools are warm before the baseline
        warm = {**spec, "count": 20}
        (self.work / "warm.json").write_text(json.dumps(warm))
        self._hold(self.work / "warm.json", self.work / "warm-out.json", hold=0.2)
        settle = 0.3 if self.args.quick else 1.0
        time.sleep(settle)
        before = svc.rss()
        proc = subprocess.Popen(
            [PYTHON, "-m", "bench.loadgen", str(spec_path), str(out_path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, self.cpu_side)) if self.cpu_side else None,
        )
        line = proc.stdout.readline()
        connected = int(line.split()[1]) if line.startswith("ready") else 0
        time.sleep(2 * settle)  # let the handshakes' garbage go
        samples = []
        for _ in range(4):
            samples.append(svc.rss())
            time.sleep(0.25)
        held = median(samples)
        proc.stdin.write("close\n")
        proc.stdin.flush()
        proc.wait(60)
        out = json.loads(out_path.read_text())
        time.sleep(settle)
        after_close = svc.rss()
        per = (held - before) / connected if connected else None
        self.results[key] = {
            "connections": connected,
            "requested": count,
            "rss_before_mib": before / 2**20,
            "rss_held_mib": held / 2**20,
            "rss_after_close_mib": after_close / 2**20,
            "kib_per_connection": per / 1024 if per is not None else None,
            "loadgen": out,
            "service": name,
            "permessage_deflate": deflate,
            "note": "RSS (VmRSS, /proc/<pid>/status) of the service with the connections open minus before, "
            "divided by the connections; pings are answered so they stay authenticated and open",
        }
        log(
            f"  idle ({name}): {connected} connections, {self.results[key]['kib_per_connection']:.1f} KiB each "
            f"(RSS {before / 2**20:.1f} -> {held / 2**20:.1f} MiB, {after_close / 2**20:.1f} after close)"
        )

    def _hold(self, spec_path: Path, out_path: Path, hold: float) -> dict:
        proc = subprocess.Popen(
            [PYTHON, "-m", "bench.loadgen", str(spec_path), str(out_path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        proc.stdout.readline()
        time.sleep(hold)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        proc.wait(60)
        return json.loads(out_path.read_text())

    def stall(self) -> None:
        """A WebSocket reader that stops reading while a long generation streams; the same
        with a reader that reads, as the control. Server RSS sampled every 100 ms."""
        p = self.plan["stall"]
        svc = self.services["main"]
        out = {}
        for case in ("control", "stalled"):
            self.behaviour(tps=p["tps"], n=p["n"])
            session = self.new_sessions("main", 1)
            spec = {
                "kind": "stall",
                "service": svc.extra["base"],
                "token": self.tokens["main"],
                "sessions": session,
                "stall": case == "stalled",
                "timeout": 120,
            }
            sp, op = self.work / f"stall-{case}.json", self.work / f"stall-{case}-out.json"
            sp.write_text(json.dumps(spec))
            proc = subprocess.Popen(
                [PYTHON, "-m", "bench.loadgen", str(sp), str(op)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, self.cpu_side)) if self.cpu_side else None,
            )
            line = proc.stdout.readline()
            t0 = time.monotonic()
            samples = []
            while time.monotonic() - t0 < p["seconds"]:
                samples.append((round(time.monotonic() - t0, 2), svc.rss() / 2**20))
                time.sleep(0.1)
            proc.stdin.write("resume\n")
            proc.stdin.flush()
            gid = line.split()[1] if len(line.split()) > 1 else ""
            if gid:  # the generation would run on for a while: end it; the reader must get its done
                http_json(
                    "POST",
                    f"{svc.extra['base']}/generations/{gid}/cancel",
                    None,
                    {"Authorization": f"Bearer {self.tokens['main']}"},
                    timeout=60,
                )
            proc.wait(150)
            res = json.loads(op.read_text())
            rss = [s[1] for s in samples]
            half = len(rss) // 2
            out[case] = {
                "ready": line.strip(),
                "samples_mib": samples,
                "rss_start_mib": rss[0],
                "rss_max_mib": max(rss),
                "growth_mib": max(rss) - rss[0],
                "second_half_growth_mib": max(rss[half:]) - rss[half] if rss[half:] else None,
                "reader": res,
            }
            self.drain("main", [])
        out["note"] = (
            "RSS of the service while one generation streams at "
            f"{p['tps']} tokens/s to a reader that stops reading (stalled) or keeps reading (control); "
            "the stalled reader then resumes and must still receive its done frame"
        )
        out["extra_growth_mib"] = out["stalled"]["growth_mib"] - out["control"]["growth_mib"]
        self.results["stalled_reader"] = out
        log(
            f"  stall: growth stalled {out['stalled']['growth_mib']:.2f} MiB vs control "
            f"{out['control']['growth_mib']:.2f} MiB; stalled reader ended {out['stalled']['reader']['status']}"
        )

    def scaleout(self) -> None:
        p = self.plan["scaleout"]
        script = ROOT / "bench" / "scaleout_throughput.py"
        if p is None:
            self.results["scaleout"] = {"status": "skipped", "note": "not run in --quick mode"}
            return
        if not script.exists():
            self.results["scaleout"] = {
                "status": "missing",
                "note": "GAP: bench/scaleout_throughput.py does not exist yet",
            }
            return
        log("  scale-out: running bench/scaleout_throughput.py " + " ".join(p["args"]))
        t0 = time.monotonic()
        try:
            r = subprocess.run(
                [PYTHON, str(script), *p["args"]], cwd=ROOT, capture_output=True, text=True, timeout=p["timeout"]
            )
            out, code = r.stdout + r.stderr, r.returncode
        except subprocess.TimeoutExpired as exc:
            out, code = (
                (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or ""),
                "timeout",
            )
        self.results["scaleout"] = {
            "status": "ok" if code == 0 else f"failed ({code})",
            "args": p["args"],
            "elapsed_s": round(time.monotonic() - t0, 1),
            "output": out[-6000:],
            "parsed": report.parse_scaleout(out),
        }
        log(f"  scale-out: {self.results['scaleout']['status']} in {self.results['scaleout']['elapsed_s']}s")
