"""bench/hub.py's report: the latency table, the verdicts per hub + agent pair, and with
--against the before/after section (REV's pair before, the working tree's after)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from compare import cpu_ratio
from compare_report import Scenario, median_error, round_spread
from fake_upstream import CHUNKS
from measure import CONCURRENCY, Load, Measure, Plan, Target
from report import describe_machine, fmt_ms, ratio, verdict

BAR = 2.0  # the issue's: at most 2x the gateway's


@dataclass
class CpuResult:
    """One CPU scenario, the gateway against one hub + agent pair."""

    name: str
    stream: bool
    gateway: Load
    hub: Load
    rounds: list[float]  # hub / gateway CPU per request, each round
    hub_share: float  # of the hub target's CPU, the hub's (the rest is the agent's)

    @property
    def judged(self) -> float:
        return statistics.median(self.rounds)


@dataclass
class CpuScenario:
    """One CPU scenario as measured: the loads of the gateway, then of each pair (the working
    tree's, then REV's), over all rounds and in each round."""

    name: str
    stream: bool
    totals: list[Load]
    per_round: list[list[Load]]
    hub_shares: list[float]  # per pair

    def result(self, pair: int) -> CpuResult:
        side = pair + 1
        rounds = [cpu_ratio(got[side], got[0]) for got in self.per_round]
        share = self.hub_shares[pair]
        return CpuResult(self.name, self.stream, self.totals[0], self.totals[side], rounds, share)

    def after_before(self) -> Scenario:
        """The working tree's pair (after) against REV's (before), per request: compare.py's
        B/A, each round's ratio of two phases of the same round."""
        rounds = [cpu_ratio(got[1], got[2]) for got in self.per_round]
        return Scenario(
            self.name, self.stream, self.totals[2].cpu_us, self.totals[1].cpu_us, rounds
        )


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


def latency_verdicts(
    added: dict[str, tuple[float, float]], got: dict[str, Measure], suffix: str = ""
) -> list[str]:
    """The verdicts of the pair whose row keys end with `suffix` (bench/hub.py Pair.key)."""
    gw, hub = added["gateway-openai"], added["hub-openai" + suffix]
    ratios = [ratio(hub[0], gw[0]), ratio(hub[1], gw[1])]
    ok = all(r <= BAR for r in ratios)  # NaN (a gateway lost in the noise) is not met
    lines = [
        f"- added p50 latency, hub + agent / gateway (OpenAI client, passthrough): whole "
        f"{ratios[0]:.2f}x ({hub[0]:.3f} / {gw[0]:.3f} ms), streamed {ratios[1]:.2f}x "
        f"({hub[1]:.3f} / {gw[1]:.3f} ms) (bar <= {BAR:g}x): {verdict(ok)}",
    ]
    # A modelport agent serves a whole answer as a whole job (docs/wire.md's extension):
    # the engine is asked for one JSON body, as the gateway asks it. Before that extension
    # the hub ran it as a streamed job, so this compares it with a direct streamed call.
    over_stream = got["hub-openai" + suffix].seq_p50 - got["direct-openai"].ttlb_p50
    lines.append(
        f"- for information: a whole answer through hub + agent over a direct *streamed* "
        f"call adds {over_stream:.3f} ms, {ratio(over_stream, gw[0]):.2f}x the gateway's "
        f"whole added p50 and {ratio(over_stream, gw[1]):.2f}x its streamed one"
    )
    an = added["hub-anthropic" + suffix]
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
        f"- for information: CPU per whole answer (a whole job), hub + agent / gateway: "
        f"{whole.judged:.2f}x",
    ]


def before_after_lines(
    rev: str, added: dict[str, tuple[float, float]], scenarios: list[CpuScenario], plan: Plan
) -> list[str]:
    """Per figure: REV's pair (before), the working tree's (after), after/before."""
    lines = [
        f"| figure | before: {rev} | after: working tree | after/before "
        "| after/before, single rounds |",
        "|" + "---|" * 5,
    ]
    before, after = added["hub-openai@" + rev], added["hub-openai"]
    for what, i in (("added p50, whole answer, ms", 0), ("added p50, streamed, ms", 1)):
        lines.append(
            f"| {what} | {before[i]:.3f} | {after[i]:.3f} | {ratio(after[i], before[i]):.2f} | - |"
        )
    compared = [s.after_before() for s in scenarios]
    for s in compared:
        per = CHUNKS if s.stream else 1
        what = f"CPU per chunk, {s.key}, us" if s.stream else "CPU per whole answer, us"
        singles = [r for r in s.rounds if r == r]
        low, high = (min(singles), max(singles)) if singles else (float("nan"),) * 2
        lines.append(
            f"| {what} | {s.cpu_a / per:,.1f} | {s.cpu_b / per:,.1f} | {s.ratio:.3f} (median "
            f"of rounds; totals {s.pooled:.3f}) | {low:.3f} - {high:.3f} |"
        )
    spread = round_spread(compared)
    return [
        *lines,
        "",
        f"- CPU (hub and agent process groups together, the figures judged): single rounds "
        f"scatter by {spread:.1%} (robust sd) around their figure's median after/before; "
        f"over {plan.rounds} rounds, an after/before is good to about "
        f"{median_error(spread, plan.rounds):.1%} (one standard error)",
        "- added p50 latency is wall-clock: on a shared machine it moves between runs by more "
        "than a hot-path change moves it; read its after/before only from a quiet machine",
    ]


def report(
    rows: list[tuple[Target, Measure]],
    scenarios: list[CpuScenario],
    info: dict[str, str],
    plan: Plan,
    quick: bool,
    profile_lines: list[str],
    against: str | None = None,
) -> None:
    lat, added = latency_lines(rows)
    got = {t.key: m for t, m in rows}
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
        + (
            f" Three sides a round (the gateway, the working tree's hub + agent, {against}'s), "
            "the order reversed every other round."
            if against
            else ""
        )
    )
    print()
    print("\n".join(lat))
    if against:
        print("\nThe working tree's hub + agent:")
    print()
    print("\n".join(latency_verdicts(added, got)))
    print()
    print("\n".join(cpu_lines([s.result(0) for s in scenarios])))
    if against:
        print(f"\nThe hub + agent at {against} (a git archive export), against the same gateway:")
        print()
        print("\n".join(latency_verdicts(added, got, "@" + against)))
        print()
        print("\n".join(cpu_lines([s.result(1) for s in scenarios])))
        print(f"\nBefore/after: the hub + agent at {against} (before) and the working tree's")
        print(f"(after), measured in the same rounds ({CONCURRENCY} concurrent for CPU):\n")
        print("\n".join(before_after_lines(against, added, scenarios, plan)))
    if profile_lines:
        print()
        print("\n".join(profile_lines))
