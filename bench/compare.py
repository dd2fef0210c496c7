"""Does modelport at commit B cost the server as much as at commit A? Both in one run.

Run (from the repository root, in the bench venv; see bench/README.md):

    .venv-bench/bin/python bench/compare.py REV_A REV_B              # about 8 minutes
    .venv-bench/bin/python bench/compare.py REV_A REV_B --quick      # about 4 minutes
    .venv-bench/bin/python bench/compare.py HEAD HEAD --quick        # the method's own noise

One run starts the fake upstream (bench/fake_upstream.py), `modelport serve` as committed at
REV_A and at REV_B (two `git archive` exports side by side, each started through its own
console script with the same config as bench/gateway.py) and, unless --no-litellm, LiteLLM's
proxy as a reference. Then:

- latency: sequential requests in rounds over every target, A's and B's side by side in
  each round (p50/p99, streams to first and last byte);
- throughput and server CPU per request at 64 concurrent, per scenario (passthrough or
  transcoded, OpenAI or Anthropic client, and a Responses API client transcoded when both
  commits serve /v1/responses; whole or streamed): in rounds, A then B, then B
  then A (ABBA: a load that rises or falls steadily hits both alike), each phase short;
  the CPU per request of a side is its total CPU over its total requests;
- the direct and LiteLLM rows are measured once each, for the tables only.

It prints A's table, B's table (the direct rows in both), and per scenario the server CPU per
request at A and B, B/A (the median of the rounds' B/A, judged, and that of the totals), the
lowest and highest B/A of single rounds, and the added p50 latency over a direct call at A
and B. The verdict: B/A within 5% in every scenario; the noise: how far single rounds
scatter (a robust sd) and so how well a scenario's median is known. Server CPU per request
hardly moves with other load on the machine; wall-clock figures do.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare_report import Scenario, print_report
from fake_upstream import ANTH_MODEL, PASS_MODEL, TRANS_MODEL
from gateway import make_target, warn_if_busy
from measure import (
    Load,
    Measure,
    OthersMeter,
    Plan,
    Target,
    check_answers,
    client_session,
    group_cpu_fine,
    latency,
    record_load,
    throughput,
)
from report import machine
from servers import (
    ROOT,
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

# Latency rounds and throughput rounds alike; `seconds` is one phase of one side.
# Many short rounds: load from other processes comes and goes within seconds, and the
# uncertainty of a median of rounds falls with the square root of their number.
FULL_PLAN = Plan(warmup=50, seq_n=300, rounds=12, seconds=1.5, cap=10000)
QUICK_PLAN = Plan(warmup=10, seq_n=60, rounds=6, seconds=1.0, cap=3000)
REFERENCE_SECONDS = 2.0  # throughput of each direct and LiteLLM row, measured once

# The modelport targets of each commit (key, client format, model), as in bench/gateway.py.
MP_TARGETS = [
    ("mp-pass-openai", "openai", PASS_MODEL),  # vllm backend: passthrough
    ("mp-pass-anthropic", "anthropic", PASS_MODEL),
    ("mp-trans-anth>oai", "anthropic", TRANS_MODEL),  # localai backend: OpenAI only
    ("mp-trans-oai>anth", "openai", ANTH_MODEL),  # anthropic backend: Anthropic only
]
# Only when both commits serve POST /v1/responses (an older commit would answer 404).
RESPONSES_TARGET = ("mp-trans-resp>oai", "responses", TRANS_MODEL)  # localai: transcoded


def serves_responses(rev: str) -> bool:
    """Whether modelport at `rev` has the Responses dialect (modelport/wire/responses)."""
    probe = ["git", "cat-file", "-e", f"{rev}:modelport/wire/responses"]
    return subprocess.run(probe, cwd=ROOT, capture_output=True).returncode == 0


def mp_targets_of(sides: list[Side]) -> list[tuple[str, str, str]]:
    if all(serves_responses(side.rev) for side in sides):
        return [*MP_TARGETS, RESPONSES_TARGET]
    print("a commit has no /v1/responses: no Responses scenario", file=sys.stderr)
    return MP_TARGETS


@dataclass
class Side:
    """One commit's modelport: its rows in the table, one per modelport target."""

    name: str  # "A" or "B"
    rev: str
    url: str = ""
    rows: list[tuple[Target, Measure]] = field(default_factory=list)


@dataclass
class Urls:
    fake: str
    litellm: str | None
    pgids: dict[str, int]


def start_all(procs: Processes, sides: list[Side], litellm: bool) -> Urls:
    what = "the fake upstream, modelport at " + " and ".join(s.rev for s in sides)
    print(f"starting {what}" + (" and LiteLLM ..." if litellm else " ..."), file=sys.stderr)
    env = bench_env()
    fake_proc, fake = start_fake(procs)
    pgids = {fake: fake_proc.pid}
    started = []
    for side in sides:
        proc, side.url = start_modelport(procs, f"modelport-{side.name}", fake, env, rev=side.rev)
        pgids[side.url] = proc.pid
        started.append((proc, side.url))
    ll = start_litellm(procs, fake, env) if litellm else None
    for proc, url in started:
        wait_modelport(proc, url)
    if ll is not None:
        wait_litellm(*ll)
        pgids[ll[1]] = ll[0].pid
    return Urls(fake, ll[1] if ll else None, pgids)


def modelport_targets(side: Side, urls: Urls, targets: list[tuple[str, str, str]]) -> list[Target]:
    label = f"modelport {side.name} ({side.rev})"
    return [
        make_target(urls.pgids, key, label, side.url, fmt, model) for key, fmt, model in targets
    ]


def reference_targets(urls: Urls) -> list[Target]:
    def ref(key: str, label: str, base: str, fmt: str) -> Target:
        return make_target(urls.pgids, key, label, base, fmt, PASS_MODEL)

    refs = [
        ref("direct-openai", "direct", urls.fake, "openai"),
        ref("direct-anthropic", "direct", urls.fake, "anthropic"),
    ]
    if urls.litellm is not None:
        refs += [
            ref("litellm-openai", "LiteLLM", urls.litellm, "openai"),
            ref("litellm-anth>oai", "LiteLLM", urls.litellm, "anthropic"),
        ]
    return refs


async def interleaved_rounds(
    session: Any,
    targets: Sequence[Target],
    stream: bool,
    plan: Plan,
    cpu: Callable[[int], float] = group_cpu_fine,
) -> tuple[list[Load], list[list[Load]]]:
    """Throughput of each target in plan.rounds rounds, the order reversed every other round
    (ABBA; with three, ABCCBA: a load that rises or falls steadily hits them alike); the
    totals of each target and every round's loads, in the targets' order. `cpu(target.server)`
    reads a side's CPU seconds (bench/hub.py counts two processes for one side)."""
    totals = [Load() for _ in targets]
    per_round: list[list[Load]] = []
    for round_no in range(plan.rounds):
        order = range(len(targets)) if round_no % 2 == 0 else reversed(range(len(targets)))
        got = [Load() for _ in targets]
        for side in order:
            got[side] = await throughput(
                session, targets[side], stream, plan.seconds, plan.cap, cpu
            )
            totals[side].add(got[side])
        per_round.append(got)
    return totals, per_round


def cpu_ratio(after: Load, before: Load) -> float:
    """CPU per request of `after` over that of `before` (NaN when `before` took none)."""
    return after.cpu_us / before.cpu_us if before.cpu_s else float("nan")


async def interleaved(
    session: Any,
    a: Target,
    b: Target,
    stream: bool,
    plan: Plan,
    cpu: Callable[[int], float] = group_cpu_fine,
) -> tuple[Load, Load, list[float]]:
    """Throughput of A and B in plan.rounds rounds, ABBA order; the totals of each side and
    the B/A CPU per request of every round."""
    totals, per_round = await interleaved_rounds(session, (a, b), stream, plan, cpu)
    return totals[0], totals[1], [cpu_ratio(got[1], got[0]) for got in per_round]


async def measure(
    sides: list[Side], refs: list[Target], plan: Plan, pgids: list[int]
) -> tuple[list[tuple[Target, Measure]], list[Scenario], float]:
    """Every row measured; the scenarios with their per-round ratios; the CPU (cores) that
    other processes used meanwhile."""
    a, b = sides
    ref_rows = [(t, Measure()) for t in refs]
    pairs = list(zip(a.rows, b.rows, strict=True))
    # A's and B's rows side by side, so each latency round reaches them at the same moment.
    mixed = ref_rows + [row for pair in pairs for row in pair]
    scenarios: list[Scenario] = []
    async with client_session() as session:
        others = OthersMeter(pgids)
        await check_answers(session, mixed)
        await latency(session, mixed, plan)
        for (ta, ma), (tb, mb) in pairs:
            loads = {}
            for stream in (False, True):
                how = "stream" if stream else "whole"
                print(f"  throughput, {ta.key} {how}, A/B ...", file=sys.stderr, flush=True)
                la, lb, rounds = await interleaved(session, ta, tb, stream, plan)
                scenarios.append(Scenario(ta.key, stream, la.cpu_us, lb.cpu_us, rounds))
                loads[stream] = (la, lb)
            record_load(ma, loads[False][0], loads[True][0])
            record_load(mb, loads[False][1], loads[True][1])
        for target, m in ref_rows:
            print(f"  throughput, {target.key} ...", file=sys.stderr, flush=True)
            whole = await throughput(session, target, False, REFERENCE_SECONDS, plan.cap)
            stream_load = await throughput(session, target, True, REFERENCE_SECONDS, plan.cap)
            record_load(m, whole, stream_load)
        others_cores = others.cores()
    return ref_rows, scenarios, others_cores


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("rev_a", metavar="REV_A", help="the commit before (git revision)")
    parser.add_argument("rev_b", metavar="REV_B", help="the commit after (git revision)")
    parser.add_argument("--quick", action="store_true", help="a shorter run, noisier")
    parser.add_argument(
        "--no-litellm", action="store_true", help="skip LiteLLM (starts faster; no reference rows)"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    # Resolved once: a branch may move while the benchmark runs.
    sides = [Side("A", short_commit(args.rev_a)), Side("B", short_commit(args.rev_b))]
    litellm = not args.no_litellm
    raise_fd_limit()
    load_before = warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="modelport-compare-") as tmp, terminated_on_sigterm():
        procs = Processes(Path(tmp))
        try:
            urls = start_all(procs, sides, litellm)
            targets = mp_targets_of(sides)
            for side in sides:
                side.rows = [(t, Measure()) for t in modelport_targets(side, urls, targets)]
            refs = reference_targets(urls)
            print(f"measuring ({'quick' if args.quick else 'full'} run) ...", file=sys.stderr)
            ref_rows, scenarios, others = asyncio.run(
                measure(sides, refs, plan, list(urls.pgids.values()))
            )
        finally:
            procs.stop_all()
    info = machine(None)
    info |= {"others": f"{others:.2f}", "load_before": load_before}
    info["modelport"] = f"A = {sides[0].rev}, B = {sides[1].rev} (git archive exports)"
    revs = [s.rev for s in sides]
    print_report(ref_rows, [s.rows for s in sides], revs, scenarios, info, plan, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
