"""Figures from the load generators' raw records, and their aggregation over rounds.

Definitions (also in bench/README.md):
- TTFT: send of the message/request -> arrival of the first content frame, at the client.
- inter-token latency (ITL): time between consecutive content frames of one generation.
- lateness of a frame: its arrival - (arrival of the stream's first frame + k / tps), k being
  the index of the first token the frame carries (so a coalesced frame is judged by its
  oldest token).
- a stream FALLS BEHIND when any frame is more than LATE_MS late, or its first token takes
  more than TTFT_LIMIT_MS (plus the upstream's own ttft), or it has not finished by the
  cutoff (its nominal end + grace)."""

from __future__ import annotations

import itertools
import math

LATE_MS = 100.0  # 2.5 token intervals at 25 tokens/s, 5 at 50: a visible stutter
TTFT_LIMIT_MS = 500.0


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, math.ceil(q / 100 * len(v)) - 1))
    return v[k]


def run_figures(gens: list[dict], tps: float, ntok: int, ttft_nominal: float = 0.0) -> dict:
    """Per-run client figures from one or more load generators' generation records."""
    ttft, itl, late_max, behind, tokens, frames = [], [], [], 0, 0, 0
    statuses: dict[str, int] = {}
    for g in gens:
        statuses[g["status"]] = statuses.get(g["status"], 0) + 1
        times = g["times"]
        counts = g.get("counts") or [1] * len(times)
        tokens += sum(counts)
        frames += len(times)
        fell = g["status"] not in ("completed",)
        if times:
            ttft.append(times[0] * 1e3)
            if times[0] * 1e3 > TTFT_LIMIT_MS + ttft_nominal * 1e3:
                fell = True
            itl.extend((b - a) * 1e3 for a, b in itertools.pairwise(times))
            if tps:
                first, k, worst = times[0], 0, 0.0
                for t, c in zip(times, counts, strict=True):  # one count per frame
                    worst = max(worst, (t - first - k / tps) * 1e3)
                    k += c
                late_max.append(worst)
                if worst > LATE_MS:
                    fell = True
        behind += fell
    return {
        "generations": len(gens),
        "statuses": statuses,
        "tokens": tokens,
        "frames": frames,
        "tokens_per_frame": round(tokens / frames, 3) if frames else None,
        "ttft_p50_ms": pct(ttft, 50),
        "ttft_p99_ms": pct(ttft, 99),
        "itl_p50_ms": pct(itl, 50),
        "itl_p99_ms": pct(itl, 99),
        "lateness_p50_ms": pct(late_max, 50) if tps else None,
        "lateness_p99_ms": pct(late_max, 99) if tps else None,
        "fell_behind": behind if tps else None,
        "sustained": (len(gens) - behind) if tps else None,
    }


def summarize(rounds: list[dict], keys: list[str]) -> dict:
    """Median and spread (min, max) of each figure over rounds."""
    return {key: spread([r.get(key) for r in rounds]) for key in keys}


def median(vals: list[float]) -> float | None:
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    m = len(vals) // 2
    return vals[m] if len(vals) % 2 else (vals[m - 1] + vals[m]) / 2


def spread(vals: list[float]) -> dict | None:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
