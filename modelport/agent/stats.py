"""What the agent tells the hub in each heartbeat, and its Prometheus series.

usepod-agent 0.3.x (`src/heartbeat.rs`) sends zeros. Here every figure comes from the jobs
themselves: the service's `RequestRecord` of each job (time to first byte, tokens, time
generating) and the job runner's word on how each job ended (`JobObserver`). Memory is
bounded: each window is a ring of the latest `WINDOW_JOBS` samples, and samples older than
the window's span are skipped on reading.

Figures (docs/agent.md, "Heartbeats and metrics"):
- tokens_per_sec_p50: per finished job that generated at least two tokens,
  (output tokens - 1) / (last byte - first byte), as decode speed is measured (the first
  token is the prefill's); the median over the last `WINDOW_S` seconds.
- p50/p95_latency_ms: time to the first byte of each job's answer, same window.
- error_rate_60s: jobs that ended in job_error (refusals included: the hub got an
  error) / jobs that ended, over the last 60 s; cancelled jobs count in neither.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from modelport.agent.config import AgentConfig
from modelport.gateway.metrics import CONTENT_TYPE, Children, ModelLabels
from modelport.records import RequestRecord
from modelport.wire.provider import ERROR_CODES, Heartbeat

WINDOW_S = 300.0  # the span of the p50/p95 windows
WINDOW_JOBS = 1024  # samples kept per window
ERROR_WINDOW_S = 60.0
OUTCOMES = ("done", "error", "cancelled", "refused")
FAILED = ("error", "refused")  # outcomes the hub saw as a job_error


class AgentStats:
    """Implements jobs.JobObserver; `observe` is the agent Service's observer."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`clock` measures the windows; `wall` dates the last error (RFC 3339, UTC)."""
        self.config = config
        self.clock = clock
        self.wall = wall
        self._ttft: collections.deque[tuple[float, float]] = collections.deque(maxlen=WINDOW_JOBS)
        self._speed: collections.deque[tuple[float, float]] = collections.deque(maxlen=WINDOW_JOBS)
        self._ended: collections.deque[tuple[float, bool]] = collections.deque(maxlen=WINDOW_JOBS)
        self._running: set[str] = set()  # bounded by the runner's max_concurrent
        self.last_error_at: str | None = None
        self.last_error_code: str | None = None
        self._models = ModelLabels()
        self.registry = CollectorRegistry()
        self._metrics()

    def _metrics(self) -> None:
        r = self.registry
        self.connected_gauge = Gauge(
            "modelport_agent_connected", "1 while the agent is connected and authenticated.",
            registry=r,
        )  # fmt: skip
        self.reconnects = Counter(
            "modelport_agent_reconnects", "Connections made again after one ended.", registry=r
        )
        self.jobs = Counter(
            "modelport_agent_jobs",
            "Jobs ended, by outcome (done, error, cancelled, refused) and protocol error code.",
            ["outcome", "error_code"],
            registry=r,
        )
        self.tokens = Counter(
            "modelport_agent_tokens",
            "Tokens read (in) and generated (out) by the agent's jobs.",
            ["model", "direction"],
            registry=r,
        )
        self.backend_up_gauge = Gauge(
            "modelport_agent_backend_up",
            "1 when the engine passed its last health check.",
            ["backend"],
            registry=r,
        )
        self.running = Gauge("modelport_agent_jobs_running", "Jobs running now.", registry=r)
        self._jobs = Children(self.jobs)  # per job: outcome x (six codes or "")
        self._tokens = Children(self.tokens)  # per job: bounded models x direction
        for outcome in ("done", "cancelled"):
            self._jobs(outcome, "")  # present at 0 from the start

    # -- what the service and the job runner say ---------------------------------------

    def observe(self, record: RequestRecord) -> None:
        """One job's record, from the agent's Service."""
        now = self.clock()
        # Only models that reached an engine become labels (the gateway's rule), bounded.
        model = self._models(record.model) if record.backend else ""
        self._tokens(model, "in").inc(record.input_tokens)
        self._tokens(model, "out").inc(record.output_tokens)
        if record.ttft_ms is None:
            return
        self._ttft.append((now, record.ttft_ms))
        generating_s = (record.duration_ms - record.ttft_ms) / 1000
        if record.output_tokens >= 2 and generating_s > 0:
            self._speed.append((now, (record.output_tokens - 1) / generating_s))

    def job_started(self, job_id: str, model: str) -> None:
        self._running.add(job_id)
        self.running.set(len(self._running))

    def job_finished(self, job_id: str, *, outcome: str, error_code: str | None) -> None:
        self._running.discard(job_id)
        self.running.set(len(self._running))
        if outcome not in OUTCOMES:
            outcome = "error"
        failed = outcome in FAILED
        code = _code(error_code) if failed else ""
        self._jobs(outcome, code).inc()
        if outcome == "cancelled":
            return
        self._ended.append((self.clock(), failed))
        if failed:
            stamp = datetime.fromtimestamp(self.wall(), UTC)
            self.last_error_at = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self.last_error_code = code

    # -- the connection ----------------------------------------------------------------

    def connected(self, up: bool) -> None:
        self.connected_gauge.set(1 if up else 0)

    def reconnected(self) -> None:
        self.reconnects.inc()

    def backend_up(self, name: str, up: bool) -> None:
        """An upstream's state after a router refresh (AgentEngines' `on_backend`)."""
        self.backend_up_gauge.labels(name).set(1 if up else 0)

    # -- what goes out -----------------------------------------------------------------

    def heartbeat(self, queue_depth: int) -> Heartbeat:
        now = self.clock()
        ttft = _recent(self._ttft, now - WINDOW_S)
        speed = _recent(self._speed, now - WINDOW_S)
        ended = [failed for t, failed in self._ended if t >= now - ERROR_WINDOW_S]
        return Heartbeat(
            queue_depth=queue_depth,
            tokens_per_sec_p50=round(percentile(speed, 50), 3),
            p50_latency_ms=round(percentile(ttft, 50)),
            p95_latency_ms=round(percentile(ttft, 95)),
            error_rate_60s=sum(ended) / len(ended) if ended else 0.0,
            last_error_at=self.last_error_at,
            last_error_code=self.last_error_code,
        )

    def render(self) -> tuple[bytes, str]:
        """The body and content type of GET /metrics (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry), CONTENT_TYPE


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0 for no values (what a heartbeat says when it knows none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _recent(samples: collections.deque[tuple[float, float]], since: float) -> list[float]:
    return [value for t, value in samples if t >= since]


def _code(error_code: str | None) -> str:
    """A protocol code as a label: the six codes are the only values (others: internal)."""
    return error_code if error_code in ERROR_CODES else "internal"
