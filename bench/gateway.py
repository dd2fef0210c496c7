"""What does `modelport serve` add on top of a direct call, and how does it compare with LiteLLM?

Run (from the repository root; LiteLLM and its proxy come from the `bench` extra):

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -e ".[bench]" matplotlib py-spy
    .venv-bench/bin/python bench/gateway.py                # full run, about 5 minutes
    .venv-bench/bin/python bench/gateway.py --quick        # smoke run, about 1.5 minutes

Options: `--commit REV` measures modelport as committed at REV (a `git archive` export)
instead of the working tree (two commits in one run: bench/compare.py); `--profile` adds a
py-spy look at the gateway under streaming load (needs py-spy); `--uvloop` is a what-if with
modelport on uvloop (prints only); `--no-write` prints only. matplotlib draws the chart;
without it there is no chart.
Wall-clock numbers move with whatever else runs on the machine: the report says how much
CPU other processes took meanwhile; the server CPU per request hardly moves with it.

One run starts three servers on 127.0.0.1, each in its own process group:

- a fake upstream (bench/fake_upstream.py): aiohttp, answers at once, OpenAI
  chat-completions and Anthropic messages, whole or streamed as exactly 100 content
  chunks (OpenAI: then a finish chunk, a usage chunk and [DONE]; Anthropic: 100 text
  deltas between the usual start and stop events);
- `modelport serve` (one process, ledger off, log level warning, no discovery) with three
  backends on the fake: `vllm` (speaks both formats: passthrough), `localai` (OpenAI only:
  an Anthropic client is transcoded) and `anthropic` (Anthropic only: an OpenAI client is
  transcoded);
- LiteLLM's proxy (`litellm --num_workers 1`) with `openai/` models on the fake, asked in
  the OpenAI format (/v1/chat/completions) and the Anthropic one (/v1/messages), and by a
  Responses API client (/v1/responses, bridged to the fake's chat completions).

A Responses API client (/v1/responses) also asks modelport's `localai` backend, which
transcodes it to chat completions: issue 9's rule is that this costs at most 1.5x chat
completions passthrough (server CPU per request and added p50, whole and streamed).

It measures, against each, sequential latency (p50/p99; for streams time to first byte and
to last byte) and throughput at 64 concurrent requests, whole and streamed; then the RSS
of the modelport process holding 1,000 idle streams open. It prints the table and the
ratios the product is judged by, and writes bench/results/gateway.md and gateway.png.

The pieces: fake_upstream.py (the fake), servers.py (processes, configs, commit exports),
measure.py (the client and its measurements), report.py (table, ratios, chart), pyspy.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_upstream import ANTH_MODEL, IDLE_MODEL, IDLE_TRANS_MODEL, PASS_MODEL, TRANS_MODEL
from measure import (
    CONCURRENCY,
    IDLE_STREAMS,
    Measure,
    OthersMeter,
    Plan,
    Target,
    client_session,
    endpoint,
    headers_for,
    idle_streams,
    measure_all,
    throughput,
)
from pyspy import py_spy, start_profile, top_functions
from report import machine, ratios, report
from servers import (
    Proc,
    Processes,
    bench_env,
    raise_fd_limit,
    short_commit,
    start_fake,
    start_litellm,
    start_modelport,
    terminated_on_sigterm,
    wait_litellm,
    wait_modelport,
)

FULL_PLAN = Plan(warmup=50, seq_n=300, rounds=3, seconds=10.0, cap=20000)
QUICK_PLAN = Plan(warmup=10, seq_n=50, rounds=1, seconds=2.0, cap=2000)


def warn_if_busy() -> str:
    """The load average at start, with a warning when the machine is busy."""
    load = Path("/proc/loadavg").read_text().split()[0]
    if float(load) > 0.5:
        print(
            f"warning: the machine is busy (load average {load}): numbers will be noisy",
            file=sys.stderr,
        )
    return load


@dataclass(frozen=True)
class Servers:
    fake: str  # base URLs
    mp: str
    litellm: str
    pgids: dict[str, int]  # base URL -> the process group whose CPU a request costs
    mp_pid: int


def start_servers(procs: Processes, commit: str | None, uvloop: bool) -> Servers:
    print("starting the fake upstream, modelport and LiteLLM ...", file=sys.stderr)
    env = bench_env()
    fake_proc, fake = start_fake(procs)
    mp, mp_url = start_modelport(procs, "modelport", fake, env, rev=commit, uvloop=uvloop)
    ll, ll_url = start_litellm(procs, fake, env)
    wait_modelport(mp, mp_url)
    wait_litellm(ll, ll_url)
    pgids = {fake: fake_proc.pid, mp_url: mp.pid, ll_url: ll.pid}
    return Servers(fake, mp_url, ll_url, pgids, mp.pid)


def make_target(
    pgids: dict[str, int], key: str, label: str, base: str, fmt: str, model: str
) -> Target:
    """A target on the server at `base`; its CPU is that of the process group pgids[base]."""
    return Target(key, label, endpoint(base, fmt), fmt, model, headers_for(fmt), pgids[base])


def targets_of(s: Servers) -> list[Target]:
    def on(key: str, label: str, base: str, fmt: str, model: str) -> Target:
        return make_target(s.pgids, key, label, base, fmt, model)

    return [
        on("direct-openai", "direct", s.fake, "openai", PASS_MODEL),
        on("direct-anthropic", "direct", s.fake, "anthropic", PASS_MODEL),
        on("mp-pass-openai", "modelport", s.mp, "openai", PASS_MODEL),
        on("mp-pass-anthropic", "modelport", s.mp, "anthropic", PASS_MODEL),
        on("mp-trans-anth>oai", "modelport", s.mp, "anthropic", TRANS_MODEL),
        on("mp-trans-oai>anth", "modelport", s.mp, "openai", ANTH_MODEL),
        on("mp-trans-resp>oai", "modelport", s.mp, "responses", TRANS_MODEL),
        on("litellm-openai", "LiteLLM", s.litellm, "openai", PASS_MODEL),
        on("litellm-anth>oai", "LiteLLM", s.litellm, "anthropic", PASS_MODEL),
        on("litellm-resp>oai", "LiteLLM", s.litellm, "responses", TRANS_MODEL),
    ]


def idle_targets_of(s: Servers) -> list[tuple[str, Target]]:
    passthrough = make_target(s.pgids, "idle", "modelport", s.mp, "openai", IDLE_MODEL)
    transcoded = make_target(s.pgids, "idle", "modelport", s.mp, "anthropic", IDLE_TRANS_MODEL)
    return [("passthrough", passthrough), ("transcoded", transcoded)]


async def profile_under_load(
    session: Any,
    targets: list[Target],
    plan: Plan,
    profile: Callable[[str], tuple[Proc, Path] | None],
) -> dict[str, Path]:
    """py-spy on modelport while it streams at CONCURRENCY, passthrough then transcoding."""
    profiles: dict[str, Path] = {}
    for target in targets:
        if target.key not in ("mp-pass-openai", "mp-trans-anth>oai"):
            continue
        print(f"  profiling {target.key} ...", file=sys.stderr, flush=True)
        spying = profile(target.key)
        if spying is None:
            continue
        spy, raw = spying
        await asyncio.sleep(1.0)  # py-spy attaches
        await throughput(session, target, True, plan.seconds, plan.cap)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(spy.popen.wait, 60)
        if raw.exists():
            profiles[target.key] = raw
        else:
            print(f"    py-spy wrote nothing:\n{spy.tail()}", file=sys.stderr)
    return profiles


async def run_client(
    targets: list[Target],
    plan: Plan,
    idle: list[tuple[str, Target]],
    release_url: str,
    mp_pid: int,
    hold_s: float,
    profile: Callable[[str], tuple[Proc, Path] | None] | None,
    servers: list[int],
) -> tuple[list[tuple[Target, Measure]], dict[str, dict[str, float]], dict[str, Path], float]:
    """Measure every target, profile if asked, then the idle streams. The last value is the
    CPU (in cores, on average) that processes other than this benchmark's used meanwhile."""
    rss: dict[str, dict[str, float]] = {}
    async with client_session() as session:
        others = OthersMeter(servers)
        rows = await measure_all(session, targets, plan)
        others_cores = others.cores()
        profiles: dict[str, Path] = {}
        if profile is not None:
            profiles = await profile_under_load(session, targets, plan, profile)
        for name, target in idle:
            print(f"  {IDLE_STREAMS} idle streams, {name} ...", file=sys.stderr, flush=True)
            rss[name] = await idle_streams(
                session, target, release_url, mp_pid, IDLE_STREAMS, hold_s
            )
    return rows, rss, profiles, others_cores


def profile_table(profiles: dict[str, Path]) -> list[str]:
    lines: list[str] = []
    for key, raw in profiles.items():
        lines += [
            f"py-spy on the modelport process during {key}, streams at "
            f"{CONCURRENCY} concurrent (self % = samples in that function itself):",
            "",
            "| function | self % | total % |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{name}` | {own:.1f} | {incl:.1f} |" for name, own, incl in top_functions(raw)
        ]
        lines.append("")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record modelport with py-spy while it is under load and list hot functions",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="what-if: run modelport serve on uvloop (LiteLLM's uvicorn uses it already); "
        "prints only",
    )
    parser.add_argument(
        "--commit",
        metavar="REV",
        help="benchmark modelport as committed at REV (a git archive export) instead of the "
        "working tree the venv's editable install points at",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; keep results/")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    plan, hold_s = (QUICK_PLAN, 2.0) if args.quick else (FULL_PLAN, 8.0)
    # Resolved once: HEAD may move while the benchmark runs.
    commit = short_commit(args.commit) if args.commit else None
    raise_fd_limit()
    load_before = warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp, terminated_on_sigterm():
        procs = Processes(Path(tmp))
        try:
            servers = start_servers(procs, commit, args.uvloop)
            profile_hook = None
            if args.profile and py_spy() is None:
                print("py-spy is not installed in this venv: no profile", file=sys.stderr)
            elif args.profile:

                def profile_hook(key: str) -> tuple[Proc, Path] | None:
                    out = procs.workdir / f"{key.replace('>', '-')}.raw"
                    return start_profile(procs, servers.mp_pid, plan.seconds + 1, out)

            print(f"measuring ({'quick' if args.quick else 'full'} run) ...", file=sys.stderr)
            rows, rss, profiles, others = asyncio.run(
                run_client(
                    targets_of(servers),
                    plan,
                    idle_targets_of(servers),
                    servers.fake + "/release",
                    servers.mp_pid,
                    hold_s,
                    profile_hook,
                    list(servers.pgids.values()),
                )
            )
            profile_lines = profile_table(profiles)
        finally:
            procs.stop_all()
    info = machine(commit)
    info |= {"others": f"{others:.2f}", "uvloop": "yes" if args.uvloop else ""}
    info["load_before"] = load_before
    v = ratios({t.key: m for t, m in rows}, rss)
    # The what-if run prints only: results/ holds the product as it ships.
    write = not (args.no_write or args.uvloop)
    report(rows, v, info, plan, args.quick, profile_lines, write=write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
