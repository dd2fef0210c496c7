"""What does a request cost through a hub and an agent, against the gateway serving the engine?

Run (from the repository root, in the bench venv; see bench/README.md):

    .venv-bench/bin/python bench/hub.py              # about 7 minutes
    .venv-bench/bin/python bench/hub.py --quick      # about 2-3 minutes
    .venv-bench/bin/python bench/hub.py --no-litellm --profile
    .venv-bench/bin/python bench/hub.py --quick --no-litellm --against main  # before/after

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
(bench/compare.py `interleaved_rounds`), the CPU time of the gateway's process group per stream
against that of the hub's and the agent's together, divided by the stream's 100 chunks;
both with chunks paced (one a read: the judged figure) and all at once (one read carries
many, so per-request costs weigh more); and, for information, whole answers (a modelport
agent serves them as whole jobs, docs/wire.md's extension). It prints the tables, a
verdict per bar and the machine line; ratios are judged, never absolute times.

With --against REV (a change to the hub or agent hot path), a second hub and agent run as
committed at REV: a `git archive` export, both started through the export's own console
script with PYTHONPATH on it, as bench/compare.py starts a commit; REV's agent connects to
REV's hub only, and the fake and the gateway stay one each, the working tree's. REV's rows
join the latency rounds (keys ending @REV) and each CPU round measures three sides, the
gateway, the working tree's pair and REV's, the order reversed every other round. Then the
same verdicts for REV's pair, and before/after per figure (added p50 whole and streamed,
CPU per chunk paced and at once, CPU per whole answer): REV's value, the working tree's,
and after/before (for CPU, the median of the rounds' ratios, as compare.py's B/A). The
gateway and the working tree's pair always run the working tree's code (PYTHONPATH), not
another checkout's that the venv may have installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare import interleaved_rounds
from fake_upstream import HOST, PASS_MODEL, SLOW_MODEL
from gateway import make_target, warn_if_busy
from hub_report import CpuScenario, report
from measure import (
    CONCURRENCY,
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
from report import machine
from servers import (
    ROOT,
    Proc,
    Processes,
    bench_env,
    check_loads_from,
    export_commit,
    free_port,
    quiet_server,
    raise_fd_limit,
    serve_argv,
    short_commit,
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
# --quick --against: the after/before of a CPU figure is a median of rounds, and of four a
# single round hit by other load moves it by 10% (HEAD against HEAD, paced: 0.855); six
# rounds keep the run near 2.5 minutes.
QUICK_AGAINST_PLAN = Plan(warmup=10, seq_n=60, rounds=6, seconds=2.0, cap=5000)
# The agent admits this many jobs; the hub's admission follows it. Above the benchmark's 64.
AGENT_MAX_CONCURRENT = 128


def modelport_cli(project: Path, *args: str) -> list[str]:
    """`modelport ARGS...` through the console script of `project` (servers.serve_argv)."""
    return [*serve_argv(project)[:-1], *args]


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
                *quiet_server(port),
                "[hub]",
                "enabled = true",
                f'agent_keys = ["{agent_key}"]',
                f'agents_file = "{workdir / "hub-agents.json"}"',
                "",
            ]
        )
    )
    return path


def agent_public_key(project: Path, config: Path, env: dict[str, str]) -> str:
    """`modelport agent enroll`: makes the agent's key file, prints its public key."""
    argv = modelport_cli(project, "agent", "enroll", "--config", str(config), "--allow-insecure")
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("public_key:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(f"`modelport agent enroll` printed no key:\n{out.stdout}\n{out.stderr}")


@dataclass
class Pair:
    """A hub and its agent, both run from one project: the working tree, or (--against) a
    `git archive` export of REV, each through its own console script and PYTHONPATH."""

    rev: str  # "" for the working tree
    project: Path
    url: str = ""  # the hub's base URL
    hub_pid: int = 0
    agent_pid: int = 0

    def key(self, base: str) -> str:
        """A target's key; REV's pair's end with @REV (hub_report reads them so)."""
        return f"{base}@{self.rev}" if self.rev else base

    def label(self, job: str) -> str:
        at = f" at {self.rev}" if self.rev else ""
        return f"hub + agent{at} ({job} job)" if job else f"hub + agent{at}"


@dataclass
class Servers:
    fake: str  # base URLs
    gateway: str
    litellm: str | None
    pgids: dict[str, int]  # base URL -> the process group a request to it costs
    pairs: list[Pair]  # the working tree's, then REV's


def start_servers(procs: Processes, litellm: bool, against: str | None) -> Servers:
    also = " and LiteLLM" if litellm else ""
    also += f", a hub and an agent at {against}" if against else ""
    print(f"starting the fake, the gateway, the hub, the agent{also} ...", file=sys.stderr)
    # The gateway and the working tree's pair run the working tree's code, whatever
    # modelport this venv has installed (the bench venv of another checkout, say).
    check_loads_from(ROOT, "the working tree")
    env = bench_env()
    tree_env = {**env, "PYTHONPATH": str(ROOT)}
    fake_proc, fake = start_fake(procs)
    gw_proc, gateway = start_modelport(
        procs, "gateway", fake, tree_env, extra_pass_models=(SLOW_MODEL,)
    )
    ll = start_litellm(procs, fake, env) if litellm else None
    pairs = [Pair("", ROOT)]
    if against:
        pairs.append(Pair(against, export_commit(against, procs.workdir / f"src-{against}")))
    started = [start_pair(procs, pair, fake, env) for pair in pairs]
    wait_modelport(gw_proc, gateway)
    for pair, (hub_proc, agent_proc) in zip(pairs, started, strict=True):
        wait_agent_models(hub_proc, agent_proc, pair.url)
    pgids = {fake: fake_proc.pid, gateway: gw_proc.pid}
    pgids |= {pair.url: pair.hub_pid for pair in pairs}
    if ll is not None:
        wait_litellm(*ll)
        pgids[ll[1]] = ll[0].pid
    return Servers(fake, gateway, ll[1] if ll else None, pgids, pairs)


def start_pair(procs: Processes, pair: Pair, fake: str, env: dict[str, str]) -> tuple[Proc, Proc]:
    """The pair's hub and agent (its key enrolled first), its files in a folder of its own."""
    env = {**env, "PYTHONPATH": str(pair.project)}
    workdir = procs.workdir / f"pair-{pair.rev}" if pair.rev else procs.workdir
    workdir.mkdir(exist_ok=True)
    hub_port = free_port()
    agent_config = agent_toml(workdir, fake, hub_port)
    config = hub_toml(workdir, hub_port, agent_public_key(pair.project, agent_config, env))
    suffix = f"-{pair.rev}" if pair.rev else ""
    hub_argv = [*serve_argv(pair.project), "--config", str(config), "--hub"]
    hub_proc = procs.start("hub" + suffix, hub_argv, env)
    agent_argv = modelport_cli(
        pair.project, "agent", "run", "--config", str(agent_config), "--allow-insecure"
    )
    agent_proc = procs.start("agent" + suffix, agent_argv, env)
    pair.url = f"http://{HOST}:{hub_port}"
    pair.hub_pid, pair.agent_pid = hub_proc.pid, agent_proc.pid
    return hub_proc, agent_proc


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
    at_once: list[Target]  # the gateway, then each pair: streams of 100 chunks in one burst
    paced: list[Target]  # the gateway, then each pair: one chunk a read, 10 ms apart


def targets_of(s: Servers) -> Targets:
    def on(key: str, label: str, base: str, fmt: str, model: str = PASS_MODEL) -> Target:
        return make_target(s.pgids, key, label, base, fmt, model)

    rows = [
        on("direct-openai", "direct", s.fake, "openai"),
        on("direct-anthropic", "direct", s.fake, "anthropic"),
        on("gateway-openai", "gateway (vllm passthrough)", s.gateway, "openai"),
    ]
    at_once = [rows[2]]
    paced = [on("gateway-paced", "gateway", s.gateway, "openai", SLOW_MODEL)]
    for pair in s.pairs:
        openai = on(pair.key("hub-openai"), pair.label("openai"), pair.url, "openai")
        rows.append(openai)
        rows.append(on(pair.key("hub-anthropic"), pair.label("anthropic"), pair.url, "anthropic"))
        at_once.append(openai)
        paced.append(on(pair.key("hub-paced"), pair.label(""), pair.url, "openai", SLOW_MODEL))
    if s.litellm is not None:
        rows.append(on("litellm-openai", "LiteLLM", s.litellm, "openai"))
    return Targets(latency=rows, at_once=at_once, paced=paced)


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

    def hub_share(self, hub: int, agent: int) -> float:
        """Of a pair's CPU in the phases since `spent` was cleared, the hub's share."""
        hub_s = self.spent.get(hub, 0.0)
        both = hub_s + self.spent.get(agent, 0.0)
        return hub_s / both if both else float("nan")


async def measure(
    servers: Servers, targets: Targets, plan: Plan, profile: bool, workdir: Path
) -> tuple[list[tuple[Target, Measure]], list[CpuScenario], float, list[str]]:
    rows = [(t, Measure()) for t in targets.latency]
    pairs = servers.pairs
    split = SplitCpu({p.hub_pid: (p.hub_pid, p.agent_pid) for p in pairs})
    scenarios: list[CpuScenario] = []
    profile_lines: list[str] = []
    async with client_session() as session:
        others = OthersMeter([*servers.pgids.values(), *(p.agent_pid for p in pairs)])
        await check_answers(session, [*rows, *((t, Measure()) for t in targets.paced)])
        await latency(session, rows, plan)
        runs = (
            ("paced", True, targets.paced),
            ("at once", True, targets.at_once),
            ("whole", False, targets.at_once),
        )
        for name, stream, sides in runs:
            print(f"  CPU per request, {name} ...", file=sys.stderr, flush=True)
            split.spent.clear()
            totals, per_round = await interleaved_rounds(session, sides, stream, plan, split)
            shares = [split.hub_share(p.hub_pid, p.agent_pid) for p in pairs]
            scenarios.append(CpuScenario(name, stream, totals, per_round, shares))
        others_cores = others.cores()
        if profile:
            pair = pairs[0]
            profile_lines = await profile_hub(session, pair, targets.paced[1], plan, workdir)
    return rows, scenarios, others_cores, profile_lines


async def profile_hub(
    session: Any, pair: Pair, target: Target, plan: Plan, workdir: Path
) -> list[str]:
    """py-spy on the hub and the agent while they stream paced chunks at 64 concurrent."""
    if py_spy() is None:
        return ["py-spy is not installed in this venv: no profile"]
    procs = Processes(workdir)
    seconds = max(plan.seconds, 4.0)
    spies = {
        who: start_profile(procs, pid, seconds + 1, workdir / f"{who}.raw")
        for who, pid in (("hub", pair.hub_pid), ("agent", pair.agent_pid))
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run, noisier")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument(
        "--profile", action="store_true", help="then py-spy the hub and the agent under load"
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also a hub + agent as committed at REV (git revision), measured in the same "
        "rounds: before (REV) and after (the working tree) figures from one run",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    against = short_commit(args.against) if args.against else None  # resolved once
    plan = (QUICK_AGAINST_PLAN if against else QUICK_PLAN) if args.quick else FULL_PLAN
    raise_fd_limit()
    load_before = warn_if_busy()
    litellm = not args.no_litellm
    if litellm and not (Path(sys.executable).parent / "litellm").exists():
        print("LiteLLM is not installed in this venv: no LiteLLM row", file=sys.stderr)
        litellm = False
    with tempfile.TemporaryDirectory(prefix="modelport-hub-bench-") as tmp, terminated_on_sigterm():
        procs = Processes(Path(tmp))
        try:
            servers = start_servers(procs, litellm, against)
            print(f"measuring ({'quick' if args.quick else 'full'} run) ...", file=sys.stderr)
            rows, scenarios, others, profile_lines = asyncio.run(
                measure(servers, targets_of(servers), plan, args.profile, Path(tmp))
            )
        finally:
            procs.stop_all()
    info = machine(None) | {"others": f"{others:.2f}", "load_before": load_before}
    if against:
        info["modelport"] += f"; the second hub + agent at {against} (git archive export)"
    report(rows, scenarios, info, plan, args.quick, profile_lines, against)
    return 0


if __name__ == "__main__":
    sys.exit(main())
