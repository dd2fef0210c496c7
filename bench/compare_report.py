"""bench/compare.py's report: both commits' tables, then B/A per scenario and the noise."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from measure import CONCURRENCY, Measure, Plan, Target
from report import table, verdict

GOAL = 0.05  # the restructure's bar: B's server CPU per request within 5% of A's

# Each modelport target: what it is, and the direct call it adds latency to (the fake
# endpoint in the format the gateway itself calls upstream).
SCENARIOS = {
    "mp-pass-openai": ("passthrough, OpenAI client", "direct-openai"),
    "mp-pass-anthropic": ("passthrough, Anthropic client", "direct-anthropic"),
    "mp-trans-anth>oai": ("transcoded, Anthropic client -> OpenAI engine", "direct-openai"),
    "mp-trans-oai>anth": ("transcoded, OpenAI client -> Anthropic engine", "direct-anthropic"),
    "mp-trans-resp>oai": ("transcoded, Responses client -> OpenAI engine", "direct-openai"),
}


@dataclass(frozen=True)
class Scenario:
    key: str  # a modelport target key
    stream: bool
    cpu_a: float  # server CPU per request, microseconds, over all rounds
    cpu_b: float
    rounds: list[float]  # B/A of each round alone (A and B measured back to back)

    @property
    def pooled(self) -> float:
        """B/A of the totals: every request weighs the same."""
        return self.cpu_b / self.cpu_a if self.cpu_a else float("nan")

    @property
    def ratio(self) -> float:
        """B/A judged: the median of the rounds, which a burst of other load during one
        round moves less than the totals."""
        singles = [r for r in self.rounds if r == r]
        return statistics.median(singles) if singles else float("nan")

    @property
    def name(self) -> str:
        return f"{SCENARIOS[self.key][0]}, {'streamed' if self.stream else 'whole'}"


def added_p50(m: Measure, base: Measure, stream: bool) -> float:
    """Added p50 latency over the direct call, ms: whole answer, or a stream's last byte."""
    return m.ttlb_p50 - base.ttlb_p50 if stream else m.seq_p50 - base.seq_p50


def round_spread(scenarios: list[Scenario]) -> float:
    """How far single rounds scatter around their scenario's median B/A, as a fraction: a
    robust standard deviation (1.4826 x the median absolute deviation of the logs), so an
    odd round does not set the noise."""
    deviations = [
        abs(math.log(r / s.ratio)) for s in scenarios for r in s.rounds if r == r and s.ratio > 0
    ]
    return math.expm1(1.4826 * statistics.median(deviations)) if deviations else float("nan")


def median_error(spread: float, rounds: int) -> float:
    """One standard error of a median of `rounds` values scattered by `spread`."""
    return 1.2533 * spread / math.sqrt(rounds)


def ratio_table(
    scenarios: list[Scenario],
    refs: dict[str, Measure],
    rows_a: dict[str, Measure],
    rows_b: dict[str, Measure],
) -> list[str]:
    lines = [
        "| scenario | server CPU us/req A | B | B/A, median of rounds | B/A, totals "
        "| B/A, single rounds | added p50 ms A | B | B - A |",
        "|" + "---|" * 9,
    ]
    for s in scenarios:
        base = refs[SCENARIOS[s.key][1]]
        add_a = added_p50(rows_a[s.key], base, s.stream)
        add_b = added_p50(rows_b[s.key], base, s.stream)
        singles = [r for r in s.rounds if r == r]
        low, high = (min(singles), max(singles)) if singles else (math.nan, math.nan)
        lines.append(
            f"| {s.name} | {s.cpu_a:,.0f} | {s.cpu_b:,.0f} | {s.ratio:.3f} | {s.pooled:.3f} "
            f"| {low:.3f} - {high:.3f} | {add_a:.3f} | {add_b:.3f} | {add_b - add_a:+.3f} |"
        )
    return lines


def verdict_lines(scenarios: list[Scenario], plan: Plan) -> list[str]:
    worst = max(scenarios, key=lambda s: abs(s.ratio - 1))
    ratios = [s.ratio for s in scenarios]
    spread = round_spread(scenarios)
    pooled = median_error(spread, plan.rounds)
    beyond = [s for s in scenarios if abs(s.ratio - 1) > GOAL]
    lines = [
        f"- server CPU per request, B/A (median of rounds): {min(ratios):.3f} to "
        f"{max(ratios):.3f} over "
        f"{len(scenarios)} scenarios; worst {worst.name} {worst.ratio:.3f} (goal: within "
        f"{GOAL:.0%}): {verdict(not beyond)}",
        f"- noise: single rounds scatter by {spread:.1%} (robust sd) around their scenario's "
        f"median; over {plan.rounds} rounds, a scenario's B/A is good to about {pooled:.1%} "
        "(one standard error) on this machine at this load",
    ]
    if beyond:
        far = [s for s in beyond if abs(math.log(s.ratio)) > 2 * math.log1p(pooled)]
        lines.append(
            f"- {len(beyond)} scenario(s) beyond {GOAL:.0%}, {len(far)} of them beyond twice "
            "the noise" + (": rerun (without --quick) on a quieter machine" if not far else "")
        )
    return lines


def print_report(
    ref_rows: list[tuple[Target, Measure]],
    side_rows: list[list[tuple[Target, Measure]]],
    revs: list[str],
    scenarios: list[Scenario],
    info: dict[str, str],
    plan: Plan,
    quick: bool,
) -> None:
    rows_a, rows_b = side_rows
    refs = {t.key: m for t, m in ref_rows}
    print()
    print(
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; "
        f"modelport {info['modelport']}; LiteLLM {info['litellm']}; load average "
        f"{info['load_before']} at start; other processes used {info['others']} CPUs on "
        "average meanwhile" + ("; QUICK run" if quick else "")
    )
    print(
        f"Latency: {plan.seq_n} sequential requests per target in {plan.rounds} rounds, A's "
        f"and B's targets side by side. Throughput and server CPU: {CONCURRENCY} concurrent, "
        f"{plan.rounds} rounds per scenario of {plan.seconds:g} s per commit, ABBA order; "
        "modelport's CPU read to the nanosecond (schedstat), the reference rows' in 10 ms ticks."
    )
    for name, rows, rev in (("A", rows_a, revs[0]), ("B", rows_b, revs[1])):
        print(f"\n{name}: modelport at {rev}\n")
        print("\n".join(table(ref_rows + rows)))
    print("\nB against A, per scenario (server CPU per request at 64 concurrent; added p50")
    print("latency over a direct call: whole answer, or a stream's last byte):\n")
    print(
        "\n".join(
            ratio_table(
                scenarios, refs, {t.key: m for t, m in rows_a}, {t.key: m for t, m in rows_b}
            )
        )
    )
    print()
    print("\n".join(verdict_lines(scenarios, plan)))
