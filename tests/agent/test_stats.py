"""AgentStats: heartbeat figures from the jobs themselves (usepod-agent's heartbeat.rs sends
zeros), bounded windows, and the Prometheus series with bounded labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from modelport.agent.config import AgentConfig
from modelport.agent.stats import WINDOW_JOBS, AgentStats, percentile
from modelport.gateway.metrics import MODEL_LABEL_CAP, OTHER_MODEL
from modelport.records import RequestRecord
from modelport.wire.provider import Heartbeat, decode_agent_frame, encode

Samples = list[tuple[str, dict[str, str], float]]
WALL = 1_700_000_000.5  # 2023-11-14T22:13:20.5Z


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stats() -> tuple[AgentStats, Clock]:
    clock = Clock()
    return AgentStats(AgentConfig(), clock=clock, wall=lambda: WALL), clock


def job(
    job_id: str = "j",
    *,
    model: str = "llama3",
    backend: str = "vllm:http://127.0.0.1:8000",
    ttft_ms: float | None = 100.0,
    duration_ms: float = 1100.0,
    input_tokens: int = 5,
    output_tokens: int = 11,
    error: str = "",
) -> RequestRecord:
    return RequestRecord(
        request_id=job_id,
        format="openai",
        endpoint="chat",
        model=model,
        backend=backend,
        status=200,
        stream=True,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_ms=ttft_ms,
        duration_ms=duration_ms,
        error=error,
    )


def scrape(s: AgentStats) -> Samples:
    body, content_type = s.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]


def value(samples: Samples, name: str, **labels: str) -> float | None:
    for n, got, v in samples:
        if n == name and got == labels:
            return v
    return None


def test_a_quiet_agent_says_zeros_and_no_error() -> None:
    s, _ = stats()
    assert s.heartbeat(0) == Heartbeat()  # what usepod-agent always sends
    assert s.heartbeat(3).queue_depth == 3


def test_latency_percentiles_are_time_to_first_byte_over_the_window() -> None:
    s, clock = stats()
    for n in range(1, 21):  # 10, 20, ... 200 ms
        s.observe(job(f"j{n}", ttft_ms=10.0 * n, duration_ms=10.0 * n))
    beat = s.heartbeat(2)
    assert (beat.p50_latency_ms, beat.p95_latency_ms) == (100, 190)  # nearest rank
    clock.now += 299
    s.observe(job("late", ttft_ms=1000.0, duration_ms=1000.0))
    beat = s.heartbeat(0)  # 21 samples: the 11th and 20th by rank
    assert (beat.p50_latency_ms, beat.p95_latency_ms) == (110, 200)
    clock.now += 2  # the first twenty are older than five minutes now
    beat = s.heartbeat(0)
    assert (beat.p50_latency_ms, beat.p95_latency_ms) == (1000, 1000)


def test_tokens_per_second_is_decode_speed_per_job_median() -> None:
    s, clock = stats()
    s.observe(job("a", output_tokens=11, ttft_ms=100, duration_ms=1100))  # 10 tok/s
    s.observe(job("b", output_tokens=41, ttft_ms=500, duration_ms=2500))  # 20 tok/s
    s.observe(job("c", output_tokens=31, ttft_ms=0, duration_ms=1000))  # 30 tok/s
    s.observe(job("d", output_tokens=1, ttft_ms=50, duration_ms=60))  # one token: no speed
    s.observe(job("e", output_tokens=0, ttft_ms=None, duration_ms=5))  # failed before a byte
    assert s.heartbeat(0).tokens_per_sec_p50 == 20.0
    clock.now += 301
    assert s.heartbeat(0).tokens_per_sec_p50 == 0.0


def test_error_rate_over_60_seconds_and_the_last_error() -> None:
    s, clock = stats()
    for n in range(3):
        s.job_started(f"ok{n}", "llama3")
        s.job_finished(f"ok{n}", outcome="done", error_code=None)
    s.job_started("bad", "llama3")
    s.job_finished("bad", outcome="error", error_code="backend_timeout")
    s.job_started("gone", "llama3")
    s.job_finished("gone", outcome="cancelled", error_code=None)  # in neither count
    clock.now += 30
    s.job_finished("full", outcome="refused", error_code="out_of_capacity")
    beat = s.heartbeat(0)
    assert beat.error_rate_60s == 2 / 5
    assert (beat.last_error_at, beat.last_error_code) == (
        "2023-11-14T22:13:20.500Z",
        "out_of_capacity",
    )
    clock.now += 31  # the first five are a minute old
    assert s.heartbeat(0).error_rate_60s == 1.0
    clock.now += 30
    beat = s.heartbeat(0)
    assert beat.error_rate_60s == 0.0
    assert beat.last_error_code == "out_of_capacity"  # the last error is remembered
    # The frame the session sends is valid on the wire.
    assert decode_agent_frame(encode(beat)) == beat


def test_windows_and_labels_stay_bounded() -> None:
    s, _ = stats()
    for n in range(WINDOW_JOBS * 4):
        s.observe(job(f"j{n}", model=f"m{n % (MODEL_LABEL_CAP + 100)}"))
        s.job_finished(f"j{n}", outcome="done", error_code=None)
    assert len(s._ttft) == len(s._speed) == len(s._ended) == WINDOW_JOBS
    models = {
        labels["model"]
        for name, labels, _ in scrape(s)
        if name.startswith("modelport_agent_tokens")
    }
    assert len(models) == MODEL_LABEL_CAP + 1 and OTHER_MODEL in models


def test_prometheus_series() -> None:
    s, _ = stats()
    s.connected(True)
    s.reconnected()
    s.reconnected()
    s.backend_up("vllm", True)
    s.backend_up("ollama", False)
    s.observe(job("a", input_tokens=5, output_tokens=11))
    s.observe(job("b", model="no-such-model", backend="", input_tokens=3, output_tokens=0))
    s.job_started("a", "llama3")
    assert value(scrape(s), "modelport_agent_jobs_running") == 1
    s.job_finished("a", outcome="done", error_code=None)
    s.job_finished("b", outcome="error", error_code="model_not_loaded")
    s.job_finished("c", outcome="error", error_code="x" * 100)  # never a label of its own
    s.job_finished("d", outcome="refused", error_code="out_of_capacity")
    s.job_finished("e", outcome="cancelled", error_code=None)
    got = scrape(s)
    assert value(got, "modelport_agent_connected") == 1
    assert value(got, "modelport_agent_reconnects_total") == 2
    assert value(got, "modelport_agent_backend_up", backend="vllm") == 1
    assert value(got, "modelport_agent_backend_up", backend="ollama") == 0
    assert value(got, "modelport_agent_tokens_total", model="llama3", direction="in") == 5
    assert value(got, "modelport_agent_tokens_total", model="llama3", direction="out") == 11
    # A model that reached no engine is counted under "", never as a label of its own.
    assert value(got, "modelport_agent_tokens_total", model="", direction="in") == 3
    jobs = {
        (labels["outcome"], labels["error_code"]): v
        for name, labels, v in got
        if name == "modelport_agent_jobs_total"
    }
    assert jobs == {
        ("done", ""): 1,
        ("cancelled", ""): 1,
        ("error", "model_not_loaded"): 1,
        ("error", "internal"): 1,
        ("refused", "out_of_capacity"): 1,
    }
    assert value(got, "modelport_agent_jobs_running") == 0
    s.connected(False)
    assert value(scrape(s), "modelport_agent_connected") == 0


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 95) == 4.0
