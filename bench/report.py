"""Renders results.json as a Markdown table and an SVG chart, and checks the budget.

The chart is plain SVG written here rather than matplotlib: the suite then needs nothing
beyond the service's own venv (matplotlib would pull numpy, pillow and more, ~60 MB, into
the venv every engineer and CI shares, for a few bars), and SVG opens in any browser and
renders on the forge."""

from __future__ import annotations

import html
import re

from bench import compare

SHAPES = [
    ("one_stream", "1 stream"),
    ("paced_200x50", "200 x 50 tok/s"),
    ("paced_1000x25", "1000 x 25 tok/s"),
    ("unpaced", "unpaced ceiling"),
    ("ramp", "ramped arrivals"),
    ("openai_200x50", "OpenAI-compatible /v1 streams, 200 x 50 tok/s (against native SSE)"),
]

BUDGET = [
    # (label, path to the value, limit, unit)
    ("CPU per relayed token, 200 x 50 tok/s, WebSocket", ("paced_200x50", "ws", "cpu_us_per_token"), 90, "µs"),
    ("CPU per relayed token, 200 x 50 tok/s, SSE", ("paced_200x50", "sse", "cpu_us_per_token"), 75, "µs"),
    (
        "CPU per relayed token, 200 x 50 tok/s, WebSocket + coalescing",
        ("paced_200x50", "ws+coalesce", "cpu_us_per_token"),
        90,
        "µs",
    ),
    (
        "CPU per relayed token, 200 x 50 tok/s, SSE + coalescing",
        ("paced_200x50", "sse+coalesce", "cpu_us_per_token"),
        75,
        "µs",
    ),
    ("added TTFT p50, 1 stream, WebSocket", ("one_stream", "ws", "+ttft_p50_ms"), 1.5, "ms"),
    ("added TTFT p50, 1 stream, SSE", ("one_stream", "sse", "+ttft_p50_ms"), 1.5, "ms"),
    ("added TTFT p99, 1 stream, WebSocket", ("one_stream", "ws", "+ttft_p99_ms"), 5, "ms"),
    ("added TTFT p99, 1 stream, SSE", ("one_stream", "sse", "+ttft_p99_ms"), 5, "ms"),
    ("added inter-token latency p99, 1 stream, WebSocket", ("one_stream", "ws", "+itl_p99_ms"), 2, "ms"),
    ("added inter-token latency p99, 1 stream, SSE", ("one_stream", "sse", "+itl_p99_ms"), 2, "ms"),
    ("idle memory per WebSocket connection", ("idle_ws", None, "kib_per_connection"), 60, "KiB"),
    ("1000 x 25 tok/s: streams falling behind, WebSocket", ("paced_1000x25", "ws", "fell_behind"), 0, "streams"),
    ("1000 x 25 tok/s: streams falling behind, SSE", ("paced_1000x25", "sse", "fell_behind"), 0, "streams"),
    (
        "1000 x 25 tok/s: streams falling behind, WebSocket + coalescing",
        ("paced_1000x25", "ws+coalesce", "fell_behind"),
        0,
        "streams",
    ),
    (
        "1000 x 25 tok/s: streams falling behind, SSE + coalescing",
        ("paced_1000x25", "sse+coalesce", "fell_behind"),
        0,
        "streams",
    ),
]


def _value(results: dict, path) -> dict | None:
    shape, variant, key = path
    if shape == "idle_ws":
        v = (results.get("idle_ws") or {}).get(key)
        return {"median": v, "min": v, "max": v} if v is not None else None
    s = (results.get("shapes") or {}).get(shape)
    if not s:
        return None
    if key.startswith("+"):
        return ((s.get("added") or {}).get(variant) or {}).get(key[1:])
    return (((s.get("variants") or {}).get(variant) or {}).get("summary") or {}).get(key)


def budget(results: dict) -> list[dict]:
    out = []
    for label, path, limit, unit in BUDGET:
        v = _value(results, path)
        med = v["median"] if v else None
        out.append(
            {
                "item": label,
                "limit": limit,
                "unit": unit,
                "value": med,
                "min": v["min"] if v else None,
                "max": v["max"] if v else None,
                "met": None if med is None else med <= limit,
            }
        )
    return out


def _f(v, digits=1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def _cell(s: dict | None, digits=1) -> str:
    if not s:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return _f(s["median"], digits)
    return f"{_f(s['median'], digits)} [{_f(s['min'], digits)}–{_f(s['max'], digits)}]"


COLUMNS = [
    ("cpu_us_per_token", "server CPU µs/token"),
    ("cpu_ms_per_generation", "server CPU ms/generation"),
    ("tokens_per_s", "delivered tok/s"),
    ("ttft_p50_ms", "TTFT p50 ms"),
    ("ttft_p99_ms", "TTFT p99 ms"),
    ("itl_p50_ms", "ITL p50 ms"),
    ("itl_p99_ms", "ITL p99 ms"),
    ("lateness_p99_ms", "lateness p99 ms"),
    ("fell_behind", "fell behind"),
    ("tokens_per_frame", "tok/frame"),
    ("fake_cpu_us_per_token", "upstream CPU µs/token"),
    ("loadgen_cpu_share", "loadgen CPU share"),
]


def markdown(results: dict, brief: bool = False) -> str:
    meta = results.get("meta", {})
    lines = ["# Benchmark results", ""]
    lines.append(
        f"`{meta.get('command', '')}` — started {meta.get('started')}, {meta.get('elapsed_s')} s, "
        f"{'QUICK (smoke sizes; figures are not meaningful)' if meta.get('quick') else 'full run'}."
    )
    m = meta.get("machine", {})
    lines.append(
        f"Machine: {m.get('cores')} cores, Python {m.get('python')}, load average at start "
        f"{m.get('loadavg_start')} / end {meta.get('loadavg_end')}. Pinning: {meta.get('pinning')}."
    )
    lines.append(
        "Each cell: median over interleaved rounds [min–max]. A = upstream directly, B = service over "
        "WebSocket, C = service over SSE."
    )
    lines.append("")
    heads = [
        (title, v, d)
        for key, title in SHAPES
        for v, d in (((results.get("shapes") or {}).get(key) or {}).get("added") or {}).items()
        if d.get("ratio_tokens_per_s")
    ]
    if heads:
        lines += [
            "## Headline: the service over the upstream directly (B/A, C/A; per round, then median)",
            "",
            "| shape | variant | delivered tok/s | TTFT p50 | TTFT p99 |",
            "|---|---|---|---|---|",
        ]
        for title, v, d in heads:
            cells = [d.get(f"ratio_{k}") for k in ("tokens_per_s", "ttft_p50_ms", "ttft_p99_ms")]
            lines.append(f"| {title} | {v} | " + " | ".join(_cell(c, 2) + ("×" if c else "") for c in cells) + " |")
        lines.append("")
    lines += compare.markdown(results, SHAPES)
    lines.append("## Budget")
    lines.append("")
    lines.append("| item | budget | measured (median [min–max]) | met |")
    lines.append("|---|---|---|---|")
    for b in results.get("budget", []):
        spread = "" if b["min"] is None or b["min"] == b["max"] else f" [{_f(b['min'])}–{_f(b['max'])}]"
        met = "–" if b["met"] is None else ("yes" if b["met"] else "**no**")
        lines.append(f"| {b['item']} | ≤ {b['limit']} {b['unit']} | {_f(b['value'])}{spread} | {met} |")
    lines.append("")
    for key, title in SHAPES:
        s = (results.get("shapes") or {}).get(key)
        if not s:
            continue
        lines.append(f"## {title}")
        lines.append("")
        note = (s.get("params") or {}).get("note")
        if note:
            lines.append(note)
            lines.append("")
        cols = COLUMNS if not brief else COLUMNS[:9]
        lines.append("| variant | " + " | ".join(c[1] for c in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for v, data in (s.get("variants") or {}).items():
            summ = data.get("summary") or {}
            lines.append(f"| {v} | " + " | ".join(_cell(summ.get(c[0])) for c in cols) + " |")
        added = s.get("added") or {}
        if added:
            lines.append("")
            lines.append("Added over A (per round, then median [min–max]):")
            lines.append("")
            keys = ["ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "lateness_p99_ms"]
            lines.append("| variant | " + " | ".join(f"+{k}" for k in keys) + " |")
            lines.append("|---|" + "---|" * len(keys))
            for v, d in added.items():
                lines.append(f"| {v} | " + " | ".join(_cell(d.get(k), 2) for k in keys) + " |")
        lines.append("")
    for key, title in (
        ("idle_ws", "Idle WebSocket connections"),
        (
            "idle_ws_deflate",
            "Idle WebSocket connections, permessage-deflate negotiated "
            "(uvicorn's default, clients offering it as browsers do)",
        ),
    ):
        idle = results.get(key)
        if idle:
            lines += [
                f"## {title}",
                "",
                f"{idle['connections']} of {idle['requested']} connected; service RSS "
                f"{idle['rss_before_mib']:.1f} → {idle['rss_held_mib']:.1f} MiB "
                f"({_f(idle['kib_per_connection'])} KiB per connection), "
                f"{idle['rss_after_close_mib']:.1f} MiB after they closed.",
                "",
            ]
    st = results.get("stalled_reader")
    if st and "stalled" in st:
        lines += [
            "## Stalled reader",
            "",
            st.get("note", ""),
            "",
            "| case | RSS start MiB | RSS max MiB | growth MiB | 2nd-half growth MiB | reader ended |",
            "|---|---|---|---|---|---|",
        ]
        for case in ("control", "stalled"):
            c = st[case]
            lines.append(
                f"| {case} | {c['rss_start_mib']:.1f} | {c['rss_max_mib']:.1f} | {c['growth_mib']:.2f} | "
                f"{_f(c['second_half_growth_mib'], 2)} | {c['reader'].get('status')} "
                f"({c['reader'].get('frames')} frames) |"
            )
        lines.append("")
    so = results.get("scaleout")
    if so:
        lines += ["## Scale-out mode (bench/scaleout_throughput.py)", ""]
        if so.get("parsed"):
            lines += [
                "| mode | tokens delivered | tokens/s | service CPU µs/token (all processes) |",
                "|---|---|---|---|",
            ]
            for row in so["parsed"]:
                lines.append(
                    f"| {row['mode']} | {row.get('delivered')} | {_f(row.get('tokens_per_s'))} | "
                    f"{_f(row.get('us_per_token'))} |"
                )
            lines.append("")
            lines.append(
                f"(`bench/scaleout_throughput.py {' '.join(so.get('args', []))}`: its own load, "
                "background submit + SSE, unpaced; compare with the `unpaced` rows above.)"
            )
        else:
            lines.append(f"{so.get('status')}: {so.get('note', '')}")
        lines.append("")
    if results.get("errors"):
        lines += ["## Errors", ""] + [f"- {e}" for e in results["errors"]] + [""]
    return "\n".join(lines)


def parse_scaleout(text: str) -> list[dict]:
    rows = []
    current = None
    for line in text.splitlines():
        m = re.match(r"== (.+?): (\d+) tokens delivered .*?= ([\d,]+) tokens/s", line)
        if m:
            current = {
                "mode": m.group(1),
                "delivered": int(m.group(2)),
                "tokens_per_s": float(m.group(3).replace(",", "")),
            }
            rows.append(current)
            continue
        m = re.match(r"\s+all\s+cpu\s+([\d.]+)s\s+([\d.]+) us/token", line)
        if m and current is not None:
            current["cpu_s"] = float(m.group(1))
            current["us_per_token"] = float(m.group(2))
    return rows


# ---------------------------------------------------------------- SVG

COLORS = {
    "direct": "#7f7f7f",
    "ws": "#1f77b4",
    "sse": "#ff7f0e",
    "ws+coalesce": "#6baed6",
    "sse+coalesce": "#fdae6b",
    "ws+deflate": "#9467bd",
    "ws@baseline": "#aec7e8",
    "sse@baseline": "#ffbb78",
}


def _panel(
    title: str,
    rows: list[tuple[str, str, dict | None]],
    x0: int,
    y0: int,
    width: int,
    unit: str,
    limit: float | None = None,
) -> tuple[list[str], int]:
    """Horizontal bars (median) with min–max whiskers; returns (elements, height)."""
    bar_h, gap, label_w = 14, 4, 210
    vals = [r[2] for r in rows if r[2]]
    top = max([v["max"] for v in vals] + [limit or 0] + [1e-9])
    scale = (width - label_w - 70) / top
    el = [f'<text x="{x0}" y="{y0 + 14}" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    y = y0 + 24
    for label, variant, v in rows:
        el.append(
            f'<text x="{x0 + label_w - 6}" y="{y + bar_h - 3}" font-size="11" text-anchor="end">'
            f"{html.escape(label)}</text>"
        )
        if v:
            w = max(1.0, v["median"] * scale) if v["median"] > 0 else 1.0
            el.append(
                f'<rect x="{x0 + label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{COLORS.get(variant, "#999")}"/>'
            )
            if v["max"] != v["min"]:
                a, b = x0 + label_w + max(0, v["min"]) * scale, x0 + label_w + max(0, v["max"]) * scale
                el.append(
                    f'<line x1="{a:.1f}" x2="{b:.1f}" y1="{y + bar_h / 2}" y2="{y + bar_h / 2}" '
                    f'stroke="black" stroke-width="1"/>'
                )
            el.append(
                f'<text x="{x0 + label_w + w + 4 + (max(0, v["max"] - v["median"]) * scale):.1f}" '
                f'y="{y + bar_h - 3}" font-size="10">{_f(v["median"])} {unit}</text>'
            )
        else:
            el.append(f'<text x="{x0 + label_w + 4}" y="{y + bar_h - 3}" font-size="10">n/a</text>')
        y += bar_h + gap
    if limit is not None:
        lx = x0 + label_w + limit * scale
        el.append(f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{y0 + 20}" y2="{y}" stroke="red" stroke-dasharray="4,3"/>')
        el.append(f'<text x="{lx + 3:.1f}" y="{y0 + 20}" font-size="10" fill="red">budget {limit} {unit}</text>')
    return el, y - y0 + 10


def svg(results: dict) -> str:
    width = 760
    elements: list[str] = []
    y = 10
    shapes = results.get("shapes") or {}

    def rows_for(key: str, shape_keys: list[str], skip_direct: bool = False):
        rows = []
        for sk, title in SHAPES:
            if sk not in shape_keys or sk not in shapes:
                continue
            for v, data in shapes[sk]["variants"].items():
                if skip_direct and v == "direct":
                    continue
                rows.append((f"{title} · {v}", v, (data.get("summary") or {}).get(key)))
        return rows

    panels = [
        (
            "Server CPU per delivered token (µs)",
            rows_for("cpu_us_per_token", ["paced_200x50", "paced_1000x25", "unpaced"], True),
            "µs",
            90,
        ),
        ("Delivered tokens/s", rows_for("tokens_per_s", ["paced_200x50", "paced_1000x25", "unpaced"]), "tok/s", None),
        ("TTFT p50, one stream (ms)", rows_for("ttft_p50_ms", ["one_stream"]), "ms", None),
        ("Streams falling behind", rows_for("fell_behind", ["paced_200x50", "paced_1000x25"]), "", None),
    ]
    for title, rows, unit, limit in panels:
        if not rows:
            continue
        el, h = _panel(title, rows, 10, y, width - 20, unit, limit)
        elements += el
        y += h + 10
    meta = results.get("meta", {})
    elements.append(
        f'<text x="10" y="{y + 4}" font-size="10" fill="#555">{html.escape(str(meta.get("command")))} '
        f"— {html.escape(str(meta.get('started')))}; bars: median of rounds, whiskers: min–max</text>"
    )
    y += 14
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>' + "".join(elements) + "</svg>\n"
    )
