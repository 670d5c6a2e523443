"""The service beside its floor (bench/minimal_relay.py) and its peer (--peer litellm): the
ratios computed per round of one interleaved run, and their tables in results.md."""

from __future__ import annotations

from bench.stats import spread

KEYS = ("cpu_us_per_token", "ttft_p50_ms", "ttft_p99_ms", "tokens_per_s")


def ratios(per: dict[str, list[dict]], pairs: list[tuple[str, str, str]]) -> dict:
    """pairs: (label, numerator variant, denominator variant); each ratio is taken per round
    (the same round's machine), then median [min-max]."""
    out = {}
    for label, num, den in pairs:
        if not per.get(num) or not per.get(den):
            continue
        out[label] = {"over": den if num == label else num}
        for key in KEYS:
            # Not strict: a variant with a failed round has fewer; the rounds both have are compared.
            vals = [
                a[key] / b[key]
                for a, b in zip(per[num], per[den], strict=False)
                if a.get(key) is not None and b.get(key)
            ]
            out[label][f"ratio_{key}"] = spread(vals)
    return out


def floor_pairs(variants, floor_of) -> list[tuple[str, str, str]]:
    """Each service variant over the floor of its transport: 1.0x costs what a bare relay does."""
    return [(v, v, floor_of(v)) for v in variants if floor_of(v) and floor_of(v) != v]


def peer_pairs(variants) -> list[tuple[str, str, str]]:
    """The peer over the service (our lead: above 1.0x the peer spends more CPU and time; for
    tokens/s it is read the other way round, the peer's share of ours)."""
    return [(v, "litellm", v) for v in ("ws", "sse") if v in variants]


def _median(results: dict, shape: str, variant: str, key: str):
    summ = ((results["shapes"][shape].get("variants") or {}).get(variant) or {}).get("summary") or {}
    return (summ.get(key) or {}).get("median")


def _fmt(v, unit="") -> str:
    if v is None:
        return "–"
    return (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}") + unit


def _count(v) -> str:
    return "–" if v is None else f"{v:.0f}"


def markdown(results: dict, shapes: list[tuple[str, str]]) -> list[str]:
    lines: list[str] = []
    floor_rows, peer_rows = [], []
    for key, title in shapes:
        s = (results.get("shapes") or {}).get(key) or {}
        for v, d in (s.get("vs_floor") or {}).items():
            cells = []
            for k in ("cpu_us_per_token", "ttft_p50_ms", "tokens_per_s"):
                r = (d.get(f"ratio_{k}") or {}).get("median")
                cells += [_fmt(_median(results, key, v, k)), _fmt(_median(results, key, d["over"], k)), _fmt(r, "×")]
            floor_rows.append(f"| {title} | {v} | " + " | ".join(cells) + " |")
        for v, d in (s.get("vs_peer") or {}).items():
            cells = []
            for k in ("cpu_us_per_token", "ttft_p50_ms", "tokens_per_s"):
                r = (d.get(f"ratio_{k}") or {}).get("median")
                cells += [_fmt(_median(results, key, v, k)), _fmt(_median(results, key, "litellm", k)), _fmt(r, "×")]
            behind = " / ".join(_count(_median(results, key, x, "fell_behind")) for x in (v, "litellm"))
            peer_rows.append(f"| {title} | {v} | " + " | ".join(cells) + f" | {behind} |")
    head = "| shape | variant | CPU µs/token | {0} | {1} | TTFT p50 ms | {0} | {1} | tok/s | {0} | {1} |"
    if floor_rows:
        lines += [
            "## Against the floor (bench/minimal_relay.py: no auth, database or history; ratio = ours / "
            "floor per round, then median; 1.0× costs what a bare relay does)",
            "",
            head.format("floor", "ratio"),
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *floor_rows,
            "",
        ]
    if peer_rows:
        lines += [
            "## Against the peer (LiteLLM proxy, one worker, same upstream; lead = LiteLLM / ours per "
            "round, then median: above 1.0× LiteLLM spends more; for tok/s the lead is LiteLLM's share "
            "of ours)",
            "",
            head.format("LiteLLM", "lead") + " fell behind ours / LiteLLM |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *peer_rows,
            "",
        ]
    return lines
