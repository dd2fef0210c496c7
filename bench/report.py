"""The gateway benchmark's report: the table, the ratios the product is judged by, the chart,
and bench/results/gateway.md."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import CONCURRENCY, IDLE_STREAMS, Measure, Plan, Target
from servers import ROOT, short_commit

RESULTS = ROOT / "bench" / "results"


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def fmt_rps(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def table(rows: list[tuple[Target, Measure]]) -> list[str]:
    head = (
        "| target | client -> upstream | whole p50 ms | whole p99 ms | stream TTFB p50 ms "
        "| stream TTLB p50 ms | stream TTLB p99 ms | whole req/s @64 | stream req/s @64 "
        "| server CPU us/req, whole | server CPU us/req, stream | errors |"
    )
    lines = [head, "|" + "---|" * 12]
    for target, m in rows:
        lines.append(
            f"| {target.label} | {target.key} | {fmt_ms(m.seq_p50)} | {fmt_ms(m.seq_p99)} "
            f"| {fmt_ms(m.ttft_p50)} | {fmt_ms(m.ttlb_p50)} | {fmt_ms(m.ttlb_p99)} "
            f"| {fmt_rps(m.rps)} | {fmt_rps(m.stream_rps)} | {fmt_rps(m.cpu_us)} "
            f"| {fmt_rps(m.stream_cpu_us)} | {m.errors} |"
        )
    return lines


@dataclass
class Verdicts:
    lines: list[str] = field(default_factory=list)
    bars: dict[str, Any] = field(default_factory=dict)

    def add(self, text: str) -> None:
        self.lines.append(text)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


# The paths whose added latency is reported: (name, target key, direct baseline key). The
# transcoding gateway calls the fake's endpoint in the engine's format, so that is its base.
ADDED = (
    ("modelport passthrough, OpenAI client -> vllm", "mp-pass-openai", "direct-openai"),
    ("modelport passthrough, Anthropic client -> vllm", "mp-pass-anthropic", "direct-anthropic"),
    (
        "modelport transcoding, Anthropic client -> localai (OpenAI)",
        "mp-trans-anth>oai",
        "direct-openai",
    ),
    ("modelport transcoding, OpenAI client -> anthropic", "mp-trans-oai>anth", "direct-anthropic"),
    (
        "modelport transcoding, Responses client -> localai (OpenAI)",
        "mp-trans-resp>oai",
        "direct-openai",
    ),
    ("LiteLLM, OpenAI client -> openai/", "litellm-openai", "direct-openai"),
    ("LiteLLM /v1/messages, Anthropic client -> openai/", "litellm-anth>oai", "direct-openai"),
    (
        "LiteLLM /v1/responses, Responses client -> openai/ chat completions",
        "litellm-resp>oai",
        "direct-openai",
    ),
)


def added(m: Measure, base: Measure) -> tuple[float, float]:
    """Added p50 latency over the base, ms: whole answer, stream's last byte."""
    return m.seq_p50 - base.seq_p50, m.ttlb_p50 - base.ttlb_p50


def added_table(results: dict[str, Measure]) -> list[str]:
    lines = [
        "Added p50 latency over a direct call to the same upstream endpoint (ms):",
        "",
        "| path | whole | stream (last byte) |",
        "|---|---|---|",
    ]
    for name, key, base in ADDED:
        whole, stream = added(results[key], results[base])
        lines.append(f"| {name} | {whole:.3f} | {stream:.3f} |")
    return [*lines, ""]


def goal_lines(results: dict[str, Measure]) -> list[str]:
    d_oa = results["direct-openai"]
    mp, tr_ao = results["mp-pass-openai"], results["mp-trans-anth>oai"]
    ll, ll_an = results["litellm-openai"], results["litellm-anth>oai"]
    mp_whole, mp_stream = added(mp, d_oa)
    ll_whole, ll_stream = added(ll, d_oa)
    ratio_whole = mp_whole / ll_whole if ll_whole > 0 else float("nan")
    ratio_stream = mp_stream / ll_stream if ll_stream > 0 else float("nan")
    t_whole = mp.rps / ll.rps
    t_stream = mp.stream_rps / ll.stream_rps
    t_an_whole = tr_ao.rps / ll_an.rps
    t_an_stream = tr_ao.stream_rps / ll_an.stream_rps
    return [
        f"- added p50 latency, modelport / LiteLLM: whole {ratio_whole:.3f}, "
        f"stream {ratio_stream:.3f} (goal <= 0.1): "
        f"{verdict(ratio_whole <= 0.1 and ratio_stream <= 0.1)}",
        f"- added p50 latency through modelport (passthrough, whole answer): {mp_whole:.3f} ms "
        f"(goal < 0.5 ms): {verdict(mp_whole < 0.5)}; streamed 100 chunks: {mp_stream:.3f} ms",
        f"- throughput @64, modelport / LiteLLM: OpenAI whole {t_whole:.1f}x, stream "
        f"{t_stream:.1f}x; Anthropic client (both transcode) whole {t_an_whole:.1f}x, stream "
        f"{t_an_stream:.1f}x (goal >= 5x): "
        f"{verdict(min(t_whole, t_stream, t_an_whole, t_an_stream) >= 5)}",
        f"- server CPU per request, LiteLLM / modelport (capacity per core, insensitive to "
        f"other load): OpenAI whole {ll.cpu_us / mp.cpu_us:.1f}x, stream "
        f"{ll.stream_cpu_us / mp.stream_cpu_us:.1f}x; Anthropic client whole "
        f"{ll_an.cpu_us / tr_ao.cpu_us:.1f}x, "
        f"stream {ll_an.stream_cpu_us / tr_ao.stream_cpu_us:.1f}x",
    ]


def transcoding_line(results: dict[str, Measure]) -> str:
    mp = results["mp-pass-openai"]
    tr_ao, tr_oa = results["mp-trans-anth>oai"], results["mp-trans-oai>anth"]
    cost = [
        ("whole req/s", mp.rps / tr_ao.rps, mp.rps / tr_oa.rps),
        ("stream req/s", mp.stream_rps / tr_ao.stream_rps, mp.stream_rps / tr_oa.stream_rps),
        ("whole p50", tr_ao.seq_p50 / mp.seq_p50, tr_oa.seq_p50 / mp.seq_p50),
        ("stream TTLB p50", tr_ao.ttlb_p50 / mp.ttlb_p50, tr_oa.ttlb_p50 / mp.ttlb_p50),
        ("server CPU whole", tr_ao.cpu_us / mp.cpu_us, tr_oa.cpu_us / mp.cpu_us),
        (
            "server CPU stream",
            tr_ao.stream_cpu_us / mp.stream_cpu_us,
            tr_oa.stream_cpu_us / mp.stream_cpu_us,
        ),
    ]
    worst = max(max(a, b) for _, a, b in cost)
    parts = ", ".join(f"{name} {a:.2f}x / {b:.2f}x" for name, a, b in cost)
    return (
        f"- transcoding cost vs passthrough (Anthropic->OpenAI / OpenAI->Anthropic; >1 = "
        f"slower): {parts} (goal <= 1.5x): {verdict(worst <= 1.5)}"
    )


def ratio(a: float, b: float) -> float:
    """a / b, or NaN when b is not positive (an added latency lost in the noise)."""
    return a / b if b > 0 else float("nan")


def responses_lines(results: dict[str, Measure]) -> list[str]:
    """Issue 9's speed rule: the Responses dialect transcoded to a chat completions engine
    against chat completions passthrough, server CPU per request and added p50; and LiteLLM's
    /v1/responses (bridged to the same chat completions) beside it."""
    d_oa, mp = results["direct-openai"], results["mp-pass-openai"]
    resp, ll = results["mp-trans-resp>oai"], results["litellm-resp>oai"]
    mp_added, resp_added = added(mp, d_oa), added(resp, d_oa)
    cost = [
        ("server CPU whole", resp.cpu_us, mp.cpu_us, "us"),
        ("server CPU stream", resp.stream_cpu_us, mp.stream_cpu_us, "us"),
        ("added p50 whole", resp_added[0], mp_added[0], "ms"),
        ("added p50 stream (last byte)", resp_added[1], mp_added[1], "ms"),
    ]
    worst = max(ratio(a, b) for _, a, b, _ in cost)
    parts = ", ".join(
        f"{name} {ratio(a, b):.2f}x ({a:,.0f} / {b:,.0f} us)"
        if unit == "us"
        else f"{name} {ratio(a, b):.2f}x ({a:.3f} / {b:.3f} ms)"
        for name, a, b, unit in cost
    )
    ll_added = added(ll, d_oa)
    return [
        f"- Responses client transcoded to chat completions (localai) vs chat completions "
        f"passthrough (vllm), >1 = costlier: {parts} (goal <= 1.5x): "
        f"{verdict(worst <= 1.5)}",
        f"- Responses client, LiteLLM /v1/responses / modelport (both on the fake's chat "
        f"completions): server CPU whole {ratio(ll.cpu_us, resp.cpu_us):.1f}x, stream "
        f"{ratio(ll.stream_cpu_us, resp.stream_cpu_us):.1f}x; throughput modelport / "
        f"LiteLLM whole {ratio(resp.rps, ll.rps):.1f}x, stream "
        f"{ratio(resp.stream_rps, ll.stream_rps):.1f}x; added p50 LiteLLM whole "
        f"{ll_added[0]:.3f} ms, stream {ll_added[1]:.3f} ms",
    ]


def rss_line(rss: dict[str, dict[str, float]]) -> str:
    peak = max(r["peak"] for r in rss.values())
    detail = "; ".join(
        f"{name}: {r['before']:.0f} MB before, {r['peak']:.0f} MB with "
        f"{r['opened']:.0f} open (opened in {r['open_s']:.1f} s), {r['after']:.0f} MB after"
        for name, r in rss.items()
    )
    return (
        f"- RSS of modelport with {IDLE_STREAMS} idle streams: peak {peak:.0f} MB "
        f"(goal < 200 MB): {verdict(peak < 200)} ({detail})"
    )


def chart_bars(results: dict[str, Measure]) -> dict[str, Any]:
    d_oa = results["direct-openai"]
    mp, tr_ao = results["mp-pass-openai"], results["mp-trans-anth>oai"]
    ll, ll_an = results["litellm-openai"], results["litellm-anth>oai"]
    tr_ro, ll_ro = results["mp-trans-resp>oai"], results["litellm-resp>oai"]
    return {
        "added": {
            "modelport pass": added(mp, d_oa),
            "modelport transcode A>O": added(tr_ao, d_oa),
            "modelport transcode R>O": added(tr_ro, d_oa),
            "LiteLLM": added(ll, d_oa),
            "LiteLLM /v1/messages": added(ll_an, d_oa),
            "LiteLLM /v1/responses": added(ll_ro, d_oa),
        },
        "rps": {
            "direct": (d_oa.rps, d_oa.stream_rps),
            "modelport pass": (mp.rps, mp.stream_rps),
            "modelport transcode A>O": (tr_ao.rps, tr_ao.stream_rps),
            "modelport transcode R>O": (tr_ro.rps, tr_ro.stream_rps),
            "LiteLLM": (ll.rps, ll.stream_rps),
            "LiteLLM /v1/messages": (ll_an.rps, ll_an.stream_rps),
            "LiteLLM /v1/responses": (ll_ro.rps, ll_ro.stream_rps),
        },
    }


def ratios(results: dict[str, Measure], rss: dict[str, dict[str, float]]) -> Verdicts:
    """The added latency table and the goals the product is judged by, and the chart's bars."""
    v = Verdicts()
    v.lines = [*added_table(results), "Goals:", "", *goal_lines(results)]
    v.add(transcoding_line(results))
    v.lines += responses_lines(results)
    if rss:
        v.add(rss_line(rss))
    v.bars = chart_bars(results)
    return v


def chart(bars: dict[str, Any], path: Path, subtitle: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for ax, key, title, unit in (
        (left, "added", "Added p50 latency over a direct call", "ms (log)"),
        (right, "rps", "Throughput at 64 concurrent requests", "requests/s (log)"),
    ):
        names = list(bars[key])
        width = 0.38
        xs = range(len(names))
        whole = [max(bars[key][n][0], 1e-3) for n in names]
        stream = [max(bars[key][n][1], 1e-3) for n in names]
        b1 = ax.bar([x - width / 2 for x in xs], whole, width, label="whole answer")
        b2 = ax.bar([x + width / 2 for x in xs], stream, width, label="stream, 100 chunks")
        ax.bar_label(b1, labels=[_short_number(x) for x in whole], fontsize=8)
        ax.bar_label(b2, labels=[_short_number(x) for x in stream], fontsize=8)
        ax.set_yscale("log")
        ax.set_xticks(list(xs), names, rotation=15, fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
    fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _short_number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def machine(commit_arg: str | None) -> dict[str, str]:
    if commit_arg:
        commit = commit_arg
        dirty = ""
    else:
        commit = short_commit("HEAD")
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "modelport"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    litellm_version = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "modelport": commit
        + (" (git archive of that commit)" if commit_arg else "")
        + (" (working tree: modelport/ has uncommitted changes)" if dirty else ""),
        "litellm": litellm_version or "?",
    }


def describe_machine(info: dict[str, str], quick: bool) -> str:
    """The machine and run line every report starts with (`info`: machine() and the run's
    `others` and `load_before`)."""
    return (
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; "
        f"modelport {info['modelport']}; LiteLLM {info['litellm']}; load average "
        f"{info['load_before']} at start; other processes used {info['others']} CPUs on "
        "average while the targets were measured"
        + ("; modelport on uvloop (--uvloop what-if)" if info.get("uvloop") else "")
        + ("; QUICK run (smoke test, not a measurement)" if quick else "")
    )


def report(
    rows: list[tuple[Target, Measure]],
    v: Verdicts,
    info: dict[str, str],
    plan: Plan,
    quick: bool,
    profile_lines: list[str],
    *,
    write: bool,
) -> None:
    how = (
        f"{plan.seq_n} sequential requests per target after {plan.warmup} warm-up for latency "
        f"(in {plan.rounds} interleaved rounds); "
        f"{CONCURRENCY} concurrent for {plan.seconds:g} s (at most {plan.cap} requests) for "
        "throughput; one aiohttp client session; everything on 127.0.0.1"
    )
    machine_line = describe_machine(info, quick)
    lines = table(rows)
    print()
    print(machine_line)
    print(how)
    print()
    print("\n".join(lines))
    print()
    print("\n".join(v.lines))
    if profile_lines:
        print()
        print("\n".join(profile_lines))
    if write:
        write_results(lines, v, info, machine_line, how, profile_lines)


TARGETS_NOTE = (
    "Targets: `direct-*` is the client calling the fake itself; `mp-pass-*` is modelport "
    "relaying to its `vllm` backend (the client's format is the engine's); "
    "`mp-trans-anth>oai` is an Anthropic client on the `localai` backend (OpenAI only), "
    "`mp-trans-oai>anth` an OpenAI client on the `anthropic` backend, `mp-trans-resp>oai` "
    "a Responses API client (/v1/responses) on the `localai` backend (transcoded to chat "
    "completions; a stream ends with its `response.completed` event); `litellm-openai` is "
    "LiteLLM's /v1/chat/completions on an `openai/` model, `litellm-anth>oai` its "
    "/v1/messages on the same model (LiteLLM transcodes), `litellm-resp>oai` its "
    "/v1/responses on an `openai/chat_completions/` model (LiteLLM bridges the Responses "
    "API to the fake's chat completions)."
)

SETUP_NOTE = (
    "Setup, the same for both gateways where it can be: no client keys (LiteLLM started "
    "with LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true); one process each "
    "(modelport is single-process, LiteLLM `--num_workers 1`); modelport with the ledger "
    "off, log level warning, and `max_concurrent = 4096` per backend (the default 8 would "
    "queue at 64 concurrent and measure admission, not overhead); LiteLLM with "
    "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES=True (its /v1/messages would "
    "otherwise call the upstream's Responses API, which vLLM-like engines lack), "
    "LITELLM_LOCAL_MODEL_COST_MAP=True, LITELLM_LOG=ERROR, defaults otherwise. "
    "`server CPU` is the user + system CPU time of the server's process group per "
    "request during the 64-concurrent phase (the fake's, for the direct rows): it does "
    "not move with other load on the machine, wall-clock numbers do. An upstream that "
    "answers at once delivers many SSE frames per network read: modelport's passthrough "
    "writes once per read, its transcoder once per event (about 100 per stream), so the "
    "streaming gap between the two is wider here than behind a real engine, which sends "
    "a token per read."
)


def write_results(
    lines: list[str],
    v: Verdicts,
    info: dict[str, str],
    machine_line: str,
    how: str,
    profile_lines: list[str],
) -> None:
    """bench/results/gateway.md (and gateway.png, with matplotlib)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    subtitle = (
        f"modelport {info['modelport'].split()[0]} vs LiteLLM {info['litellm']}, fake upstream "
        f"answering at once, {info['nproc']} CPUs, {info['date']}"
    )
    charted = chart(v.bars, RESULTS / "gateway.png", subtitle)
    md = [
        "# Gateway benchmark: modelport serve vs LiteLLM proxy vs a direct call",
        "",
        f"Machine and run: {machine_line}.",
        "",
        f"Method: {how}. The upstream is a fake that answers at once (100 content chunks "
        "per stream), so every millisecond here is the client's, the gateway's or the fake's "
        "own CPU; on a machine this small the three processes share the cores.",
        "",
        "Command: `"
        + " ".join([".venv-bench/bin/python", "bench/gateway.py", *sys.argv[1:]])
        + "`",
        "",
        "Latency in ms (TTFB: first body byte of the stream; TTLB: its last byte), "
        "throughput in requests per second at 64 concurrent.",
        "",
        *lines,
        "",
        TARGETS_NOTE,
        "",
        SETUP_NOTE,
        "",
        *v.lines,
        "",
        *profile_lines,
    ]
    if charted:
        md += ["![added latency and throughput](gateway.png)", ""]
    (RESULTS / "gateway.md").write_text("\n".join(md).rstrip() + "\n")
    print(f"\nwrote {RESULTS / 'gateway.md'}" + (" and gateway.png" if charted else ""))
