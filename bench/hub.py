"""What does a request cost through a hub and an agent, against the gateway serving the engine?

Run (from the repository root, in the bench venv; see bench/README.md):

    .venv-bench/bin/python bench/hub.py              # about 7 minutes
    .venv-bench/bin/python bench/hub.py --quick      # about 2-3 minutes
    .venv-bench/bin/python bench/hub.py --no-litellm --profile

Issue 13's speed rule: through hub and agent, the added p50 latency is at most 2x the
gateway's own, and the CPU per streamed chunk at most 2x passthrough's. One run starts, each
in its own process group (bench/servers.py):

- the fake upstream (bench/fake_upstream.py): answers at once, 100 content chunks a stream;
  its `bench-slow` model pauses 10 ms between chunks, so each chunk is a read of its own,
  as behind a real engine that sends a token at a time;
- the gateway: `modelport serve` with the fake as a `vllm` backend (passthrough), as
  bench/gateway.py starts it;
- the hub: a second `modelport serve --hub` with no backends of its own; the agent's key is
  in `[hub] agent_keys` (read with `modelport agent enroll`, which makes the key);
- the agent: `modelport agent run --allow-insecure`, its agent.toml naming the fake as a
  `vllm` engine and the hub's `ws://127.0.0.1:PORT/provider/connect`;
- unless --no-litellm, LiteLLM's proxy (latency only, for reference).

Then, in rounds that interleave the targets (bench/measure.py `latency`): sequential
requests with the OpenAI client (passthrough), whole and streamed, to the fake directly,
the gateway, the hub (and agent) and LiteLLM: p50/p99, and the added p50 over the direct
call; an Anthropic client through the hub (an `anthropic` job) for information. And the
CPU per streamed chunk: 64 concurrent streams, gateway then hub and agent, ABBA rounds
(bench/compare.py `interleaved`), the CPU time of the gateway's process group per stream
against that of the hub's and the agent's together, divided by the stream's 100 chunks;
both with chunks paced (one a read: the judged figure) and all at once (one read carries
many, so per-request costs weigh more); and, for information, whole answers (the hub runs
them as streamed jobs). It prints the tables, a verdict per bar and the
machine line; ratios are judged, never absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare import interleaved
from fake_upstream import CHUNKS, HOST, PASS_MODEL, SLOW_MODEL
from gateway import make_target, warn_if_busy
from measure import (
    CONCURRENCY,
    Load,
    Measure,
    OthersMeter,
    Plan,
    Target,
    check_answers,
    client_session,
    group_cpu_fine,
    latency,
    throughput,
)
from pyspy import py_spy, start_profile, top_functions
from report import describe_machine, fmt_ms, machine, ratio, verdict
from servers import (
    ROOT,
    Proc,
    Processes,
    bench_env,
    free_port,
    raise_fd_limit,
    serve_argv,
    start_fake,
    start_litellm,
    start_modelport,
    terminated_on_sigterm,
    wait_litellm,
    wait_modelport,
    wait_ready,
)

FULL_PLAN = Plan(warmup=50, seq_n=300, rounds=10, seconds=4.0, cap=20000)
QUICK_PLAN = Plan(warmup=10, seq_n=60, rounds=4, seconds=2.0, cap=5000)
# The agent admits this many jobs; the hub's admission follows it. Above the benchmark's 64.
AGENT_MAX_CONCURRENT = 128
BAR = 2.0  # the issue's: at most 2x the gateway's


def modelport_cli(*args: str) -> list[str]:
    """`modelport ARGS...` through the working tree's console script (servers.serve_argv)."""
    return [*serve_argv(ROOT)[:-1], *args]


def agent_toml(workdir: Path, fake: str, hub_port: int) -> Path:
    path = workdir / "agent.toml"
    path.write_text(
        "\n".join(
            [
                "[coordinator]",
                f'url = "ws://{HOST}:{hub_port}/provider/connect"',
                "[identity]",
                f'key_path = "{workdir / "agent.key"}"',
                "[[backends]]",
                'kind = "vllm"',
                f'url = "{fake}"',
                f'models = ["{PASS_MODEL}", "{SLOW_MODEL}"]',
                "[pricing]",
                "default_input_per_1m = 1",
                "default_output_per_1m = 1",
                "[limits]",
                f"max_concurrent = {AGENT_MAX_CONCURRENT}",
                "[observability]",
                f'prometheus_addr = "{HOST}:{free_port()}"',
                'log_level = "warning"',
                "[modelport]",
                "discover = false",
                f'ledger_path = "{workdir / "agent-ledger.sqlite3"}"',
                "",
            ]
        )
    )
    return path


def hub_toml(workdir: Path, port: int, agent_key: str) -> Path:
    path = workdir / "hub.toml"
    path.write_text(
        "\n".join(
            [
                "[server]",
                f'host = "{HOST}"',
                f"port = {port}",
                "api_keys_env = []",
                'ledger = "off"',
                'log_level = "warning"',
                "[discovery]",
                "enabled = false",
                "[hub]",
                "enabled = true",
                f'agent_keys = ["{agent_key}"]',
                f'agents_file = "{workdir / "hub-agents.json"}"',
                "",
            ]
        )
    )
    return path


def agent_public_key(config: Path, env: dict[str, str]) -> str:
    """`modelport agent enroll`: makes the agent's key file, prints its public key."""
    argv = modelport_cli("agent", "enroll", "--config", str(config), "--allow-insecure")
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("public_key:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(f"`modelport agent enroll` printed no key:\n{out.stdout}\n{out.stderr}")


@dataclass
class Servers:
    fake: str  # base URLs
    gateway: str
    hub: str
    litellm: str | None
    pgids: dict[str, int]  # base URL -> the process group a request to it costs
    hub_pid: int = 0
    agent_pid: int = 0
    procs: dict[str, Proc] = field(default_factory=dict)


def start_servers(procs: Processes, litellm: bool) -> Servers:
    also = " and LiteLLM" if litellm else ""
    print(f"starting the fake, the gateway, the hub, the agent{also} ...", file=sys.stderr)
    env = bench_env()
    fake_proc, fake = start_fake(procs)
    gw_proc, gateway = start_modelport(procs, "gateway", fake, env, extra_pass_models=(SLOW_MODEL,))
    ll = start_litellm(procs, fake, env) if litellm else None
    hub_port = free_port()
    agent_config = agent_toml(procs.workdir, fake, hub_port)
    config = hub_toml(procs.workdir, hub_port, agent_public_key(agent_config, env))
    hub_proc = procs.start("hub", [*serve_argv(ROOT), "--config", str(config), "--hub"], env)
    agent_argv = modelport_cli("agent", "run", "--config", str(agent_config), "--allow-insecure")
    agent_proc = procs.start("agent", agent_argv, env)
    hub = f"http://{HOST}:{hub_port}"
    wait_modelport(gw_proc, gateway)
    wait_agent_models(hub_proc, agent_proc, hub)
    pgids = {fake: fake_proc.pid, gateway: gw_proc.pid, hub: hub_proc.pid}
    if ll is not None:
        wait_litellm(*ll)
        pgids[ll[1]] = ll[0].pid
    servers = Servers(fake, gateway, hub, ll[1] if ll else None, pgids)
    servers.hub_pid, servers.agent_pid = hub_proc.pid, agent_proc.pid
    servers.procs = {"hub": hub_proc, "agent": agent_proc}
    return servers


def wait_agent_models(hub_proc: Proc, agent_proc: Proc, hub: str) -> None:
    """Until the hub's /v1/models lists the agent's models."""

    def listed(body: bytes) -> bool:
        ids = {m.get("id") for m in json.loads(body).get("data", [])}
        return {PASS_MODEL, SLOW_MODEL} <= ids

    try:
        wait_ready(hub + "/v1/models", hub_proc, 60, expect=listed)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\nthe agent's log:\n{agent_proc.tail()}") from None


@dataclass(frozen=True)
class Targets:
    latency: list[Target]  # in the latency rounds
    at_once: tuple[Target, Target]  # (gateway, hub): streams of 100 chunks in one burst
    paced: tuple[Target, Target]  # (gateway, hub): one chunk a read, 10 ms apart


def targets_of(s: Servers) -> Targets:
    def on(key: str, label: str, base: str, fmt: str, model: str = PASS_MODEL) -> Target:
        return make_target(s.pgids, key, label, base, fmt, model)

    rows = [
        on("direct-openai", "direct", s.fake, "openai"),
        on("direct-anthropic", "direct", s.fake, "anthropic"),
        on("gateway-openai", "gateway (vllm passthrough)", s.gateway, "openai"),
        on("hub-openai", "hub + agent (openai job)", s.hub, "openai"),
        on("hub-anthropic", "hub + agent (anthropic job)", s.hub, "anthropic"),
    ]
    if s.litellm is not None:
        rows.append(on("litellm-openai", "LiteLLM", s.litellm, "openai"))
    return Targets(
        latency=rows,
        at_once=(rows[2], rows[3]),
        paced=(
            on("gateway-paced", "gateway", s.gateway, "openai", SLOW_MODEL),
            on("hub-paced", "hub + agent", s.hub, "openai", SLOW_MODEL),
        ),
    )


class SplitCpu:
    """CPU seconds of a target's processes for measure.throughput (called before and after
    each phase); the hub's target counts the agent's process group too, and the split of
    each phase is added up per process group."""

    def __init__(self, groups: dict[int, tuple[int, ...]]) -> None:
        self.groups = groups
        self.before: dict[int, list[float]] = {}
        self.spent: dict[int, float] = {}  # process group -> CPU seconds in phases

    def __call__(self, pgid: int) -> float:
        members = self.groups.get(pgid, (pgid,))
        now = [group_cpu_fine(g) for g in members]
        if pgid in self.before:
            for g, a, b in zip(members, self.before.pop(pgid), now, strict=True):
                self.spent[g] = self.spent.get(g, 0.0) + b - a
        else:
            self.before[pgid] = now
        return sum(now)


@dataclass
class CpuResult:
    name: str
    stream: bool
    gateway: Load
    hub: Load
    rounds: list[float]  # hub / gateway CPU per request, each round
    hub_share: float  # of the hub target's CPU, the hub's (the rest is the agent's)

    @property
    def judged(self) -> float:
        return statistics.median(self.rounds)


async def measure(
    servers: Servers, targets: Targets, plan: Plan, profile: bool, workdir: Path
) -> tuple[list[tuple[Target, Measure]], list[CpuResult], float, list[str]]:
    rows = [(t, Measure()) for t in targets.latency]
    split = SplitCpu({servers.hub_pid: (servers.hub_pid, servers.agent_pid)})
    results: list[CpuResult] = []
    profile_lines: list[str] = []
    async with client_session() as session:
        others = OthersMeter([*servers.pgids.values(), servers.agent_pid])
        await check_answers(session, [*rows, *((t, Measure()) for t in targets.paced)])
        await latency(session, rows, plan)
        scenarios = (
            ("paced", True, targets.paced),
            ("at once", True, targets.at_once),
            ("whole", False, targets.at_once),
        )
        for name, stream, (gw, hub) in scenarios:
            print(f"  CPU per request, {name} ...", file=sys.stderr, flush=True)
            split.spent.clear()
            la, lb, rounds = await interleaved(session, gw, hub, stream, plan, split)
            hub_s = split.spent.get(servers.hub_pid, 0.0)
            both = hub_s + split.spent.get(servers.agent_pid, 0.0)
            share = hub_s / both if both else float("nan")
            results.append(CpuResult(name, stream, la, lb, rounds, share))
        others_cores = others.cores()
        if profile:
            profile_lines = await profile_hub(session, servers, targets.paced[1], plan, workdir)
    return rows, results, others_cores, profile_lines


async def profile_hub(
    session: Any, servers: Servers, target: Target, plan: Plan, workdir: Path
) -> list[str]:
    """py-spy on the hub and the agent while they stream paced chunks at 64 concurrent."""
    if py_spy() is None:
        return ["py-spy is not installed in this venv: no profile"]
    procs = Processes(workdir)
    seconds = max(plan.seconds, 4.0)
    spies = {
        who: start_profile(procs, pid, seconds + 1, workdir / f"{who}.raw")
        for who, pid in (("hub", servers.hub_pid), ("agent", servers.agent_pid))
    }
    print("  profiling the hub and the agent ...", file=sys.stderr, flush=True)
    try:
        await asyncio.sleep(1.0)  # py-spy attaches
        await throughput(session, target, True, seconds, plan.cap)
        for spying in spies.values():
            if spying is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(spying[0].popen.wait, 60)
    finally:
        procs.stop_all()
    lines: list[str] = []
    for who, spying in spies.items():
        if spying is None or not spying[1].exists():
            lines.append(f"py-spy wrote nothing for the {who}")
            continue
        lines += [
            f"py-spy on the {who}, paced streams at {CONCURRENCY} concurrent:",
            "",
            "| function | self % | total % |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{n}` | {own:.1f} | {incl:.1f} |" for n, own, incl in top_functions(spying[1])
        ]
        lines.append("")
    return lines


# -- the report ---------------------------------------------------------------------------


def latency_lines(rows: list[tuple[Target, Measure]]) -> tuple[list[str], dict[str, Any]]:
    got = {t.key: m for t, m in rows}
    lines = [
        "| target | key | whole p50 | whole p99 | stream TTFB p50 | stream TTLB p50 "
        "| stream TTLB p99 | added p50 whole | added p50 stream |",
        "|" + "---|" * 9,
    ]
    added: dict[str, tuple[float, float]] = {}
    for target, m in rows:
        base = got["direct-anthropic" if target.fmt == "anthropic" else "direct-openai"]
        added[target.key] = (m.seq_p50 - base.seq_p50, m.ttlb_p50 - base.ttlb_p50)
        whole, stream = added[target.key]
        lines.append(
            f"| {target.label} | {target.key} | {fmt_ms(m.seq_p50)} | {fmt_ms(m.seq_p99)} "
            f"| {fmt_ms(m.ttft_p50)} | {fmt_ms(m.ttlb_p50)} | {fmt_ms(m.ttlb_p99)} "
            f"| {whole:.3f} | {stream:.3f} |"
        )
    return lines, added


def latency_verdicts(added: dict[str, tuple[float, float]], got: dict[str, Measure]) -> list[str]:
    gw, hub = added["gateway-openai"], added["hub-openai"]
    ratios = [ratio(hub[0], gw[0]), ratio(hub[1], gw[1])]
    ok = all(r <= BAR for r in ratios)  # NaN (a gateway lost in the noise) is not met
    lines = [
        f"- added p50 latency, hub + agent / gateway (OpenAI client, passthrough): whole "
        f"{ratios[0]:.2f}x ({hub[0]:.3f} / {gw[0]:.3f} ms), streamed {ratios[1]:.2f}x "
        f"({hub[1]:.3f} / {gw[1]:.3f} ms) (bar <= {BAR:g}x): {verdict(ok)}",
    ]
    # A job always streams (CONTRACTS.md): the agent asks the engine for a stream even
    # when the client wants a whole answer, and the hub collects it.
    over_stream = got["hub-openai"].seq_p50 - got["direct-openai"].ttlb_p50
    lines.append(
        f"- for information: a whole answer through hub + agent is a streamed job; over a "
        f"direct *streamed* call (what the agent asks the engine for) it adds "
        f"{over_stream:.3f} ms, {ratio(over_stream, gw[0]):.2f}x the gateway's whole added "
        f"p50 and {ratio(over_stream, gw[1]):.2f}x its streamed one"
    )
    an = added["hub-anthropic"]
    lines.append(
        f"- for information: Anthropic client through hub + agent (an anthropic job, "
        f"passed through), added p50 over a direct /v1/messages: whole {an[0]:.3f} ms, "
        f"streamed {an[1]:.3f} ms"
    )
    if "litellm-openai" in added:
        ll = added["litellm-openai"]
        lines.append(
            f"- for information: LiteLLM's added p50 (OpenAI client): whole {ll[0]:.3f} ms, "
            f"streamed {ll[1]:.3f} ms; hub + agent / LiteLLM: whole "
            f"{ratio(hub[0], ll[0]):.2f}x, streamed {ratio(hub[1], ll[1]):.2f}x"
        )
    return lines


def cpu_lines(results: list[CpuResult]) -> list[str]:
    lines = [
        "| requests | gateway CPU us/req | hub + agent us/req | of which hub, agent "
        "| per chunk: gateway, hub + agent us | hub+agent / gateway (median of rounds; totals) "
        "| rounds min - max | req/s gateway, hub | errors |",
        "|" + "---|" * 9,
    ]
    for r in results:
        gw, both = r.gateway.cpu_us, r.hub.cpu_us
        chunk = f"{gw / CHUNKS:.1f}, {both / CHUNKS:.1f}" if r.stream else "-"
        lines.append(
            f"| {r.name} | {gw:,.0f} | {both:,.0f} | {both * r.hub_share:,.0f}, "
            f"{both * (1 - r.hub_share):,.0f} | {chunk} | {r.judged:.2f}x; "
            f"{ratio(both, gw):.2f}x | {min(r.rounds):.2f} - {max(r.rounds):.2f} "
            f"| {r.gateway.rps:.0f}, {r.hub.rps:.0f} | {r.gateway.errors + r.hub.errors} |"
        )
    paced = next(r for r in results if r.name == "paced")
    at_once = next(r for r in results if r.name == "at once")
    whole = next(r for r in results if r.name == "whole")
    ok = paced.judged <= BAR
    return [
        *lines,
        "",
        f"- CPU per streamed chunk, hub + agent / gateway passthrough, chunks paced (one a "
        f"read, as from a real engine): {paced.judged:.2f}x (bar <= {BAR:g}x): {verdict(ok)}; "
        f"chunks at once (a read carries many, per-request costs weigh more): "
        f"{at_once.judged:.2f}x ({verdict(at_once.judged <= BAR)})",
        f"- for information: CPU per whole answer (the hub runs it as a streamed job and "
        f"collects it), hub + agent / gateway: {whole.judged:.2f}x",
    ]


def report(
    rows: list[tuple[Target, Measure]],
    results: list[CpuResult],
    info: dict[str, str],
    plan: Plan,
    quick: bool,
    profile_lines: list[str],
) -> None:
    lat, added = latency_lines(rows)
    per_round = max(1, plan.seq_n // plan.rounds)
    print()
    print(describe_machine(info, quick))
    print(
        f"Latency: {per_round * plan.rounds} sequential requests per target and kind after "
        f"{plan.warmup} warm-up, in {plan.rounds} interleaved rounds, ms. CPU: "
        f"{CONCURRENCY} concurrent requests (streams of {CHUNKS} chunks, or whole answers), "
        f"{plan.rounds} ABBA rounds of {plan.seconds:g} s a side; the CPU time of the "
        f"process groups (the gateway's; the hub's and the agent's) per request, and per "
        f"chunk (per stream / {CHUNKS})."
    )
    print()
    print("\n".join(lat))
    print()
    print("\n".join(latency_verdicts(added, {t.key: m for t, m in rows})))
    print()
    print("\n".join(cpu_lines(results)))
    if profile_lines:
        print()
        print("\n".join(profile_lines))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run, noisier")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument(
        "--profile", action="store_true", help="then py-spy the hub and the agent under load"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    raise_fd_limit()
    load_before = warn_if_busy()
    litellm = not args.no_litellm
    if litellm and not (Path(sys.executable).parent / "litellm").exists():
        print("LiteLLM is not installed in this venv: no LiteLLM row", file=sys.stderr)
        litellm = False
    with tempfile.TemporaryDirectory(prefix="modelport-hub-bench-") as tmp, terminated_on_sigterm():
        procs = Processes(Path(tmp))
        try:
            servers = start_servers(procs, litellm)
            print(f"measuring ({'quick' if args.quick else 'full'} run) ...", file=sys.stderr)
            rows, results, others, profile_lines = asyncio.run(
                measure(servers, targets_of(servers), plan, args.profile, Path(tmp))
            )
        finally:
            procs.stop_all()
    info = machine(None) | {"others": f"{others:.2f}", "load_before": load_before}
    report(rows, results, info, plan, args.quick, profile_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
