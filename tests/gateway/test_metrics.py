"""Gateway metrics, read back from the Prometheus text the gateway would serve."""

from __future__ import annotations

import math

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from modelport.gateway.metrics import MODEL_LABEL_CAP, OTHER_MODEL, Metrics
from modelport.records import RequestRecord

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: Metrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def rec(**kw: object) -> RequestRecord:
    base: dict[str, object] = {
        "request_id": "r",
        "format": "openai",
        "endpoint": "chat",
        "model": "llama3",
        "backend": "ollama:http://127.0.0.1:11434",
        "status": 200,
    }
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


B = "ollama:http://127.0.0.1:11434"


def test_observe_counts_requests_tokens_and_latencies() -> None:
    m = Metrics()
    m.observe(rec(input_tokens=10, output_tokens=5, ttft_ms=12, duration_ms=300, stream=True))
    m.observe(rec(input_tokens=7, output_tokens=3, ttft_ms=80, duration_ms=2000, stream=True))
    m.observe(rec(format="anthropic", status=429, error="RateLimited", duration_ms=1))
    # A stream that broke after the 200 went out: a 200 request and a stream error.
    m.observe(rec(input_tokens=4, output_tokens=1, ttft_ms=20, duration_ms=50, error="Timeout"))
    s = scrape(m)

    req = "modelport_requests_total"
    assert value(s, req, model="llama3", backend=B, status="200", format="openai") == 3
    assert value(s, req, model="llama3", backend=B, status="429", format="anthropic") == 1
    tok = "modelport_tokens_total"
    assert value(s, tok, model="llama3", backend=B, direction="in") == 21
    assert value(s, tok, model="llama3", backend=B, direction="out") == 9

    ttft = "modelport_time_to_first_token_seconds"
    assert value(s, ttft + "_count", model="llama3", backend=B) == 3  # the 429 had no first byte
    total = value(s, ttft + "_sum", model="llama3", backend=B)
    assert total is not None and math.isclose(total, 0.112)
    assert value(s, ttft + "_bucket", model="llama3", backend=B, le="0.01") == 0
    assert value(s, ttft + "_bucket", model="llama3", backend=B, le="0.025") == 2
    assert value(s, ttft + "_bucket", model="llama3", backend=B, le="0.1") == 3
    assert value(s, ttft + "_bucket", model="llama3", backend=B, le="+Inf") == 3

    dur = "modelport_request_duration_seconds"
    assert value(s, dur + "_count", model="llama3", backend=B, stream="true") == 2
    assert value(s, dur + "_count", model="llama3", backend=B, stream="false") == 2
    assert value(s, dur + "_bucket", model="llama3", backend=B, stream="true", le="1.0") == 1
    assert value(s, dur + "_bucket", model="llama3", backend=B, stream="true", le="2.5") == 2

    err = "modelport_stream_errors_total"
    assert value(s, err, backend=B, error="Timeout") == 1
    assert value(s, err, backend=B, error="RateLimited") is None  # a 429 is not a stream error


def test_unresolved_model_and_unreached_backend_are_empty_labels() -> None:
    m = Metrics()
    m.observe(rec(model="", backend="", status=404, error="ModelNotFound"))
    s = scrape(m)
    assert value(s, "modelport_requests_total", model="", backend="", status="404", format="openai")
    assert not any(name == "modelport_stream_errors_total" for name, _ in s)


def test_each_metrics_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.observe(rec())
    req = "modelport_requests_total"
    assert value(scrape(a), req, model="llama3", backend=B, status="200", format="openai") == 1
    assert value(scrape(b), req, model="llama3", backend=B, status="200", format="openai") is None
    assert REGISTRY.get_sample_value(req, {"model": "llama3"}) is None


def test_model_labels_are_capped() -> None:
    m = Metrics()
    m.observe(rec(model=""))  # the unresolved model takes no slot
    for i in range(MODEL_LABEL_CAP + 50):
        m.observe(rec(model=f"m{i}", input_tokens=1))
    m.observe(rec(model="m0"))  # a model seen before the cap keeps its label
    s = scrape(m)
    models = {dict(labels)["model"] for name, labels in s if name == "modelport_requests_total"}
    assert len(models) == MODEL_LABEL_CAP + 2  # 200 models, "other" and ""
    assert {"m0", f"m{MODEL_LABEL_CAP - 1}", OTHER_MODEL, ""} <= models
    assert f"m{MODEL_LABEL_CAP}" not in models
    req = "modelport_requests_total"
    assert value(s, req, model=OTHER_MODEL, backend=B, status="200", format="openai") == 50
    assert value(s, req, model="m0", backend=B, status="200", format="openai") == 2
    tok = "modelport_tokens_total"
    assert value(s, tok, model=OTHER_MODEL, backend=B, direction="in") == 50


def test_backend_state_gauges() -> None:
    m = Metrics()
    m.set_backend_state("a", ready=True, in_flight=3, queued=7)
    m.set_backend_state("b", ready=False, in_flight=0, queued=0)
    m.set_backend_state("a", ready=True, in_flight=1, queued=0)
    s = scrape(m)
    assert value(s, "modelport_backend_ready", backend="a") == 1
    assert value(s, "modelport_backend_ready", backend="b") == 0
    assert value(s, "modelport_in_flight", backend="a") == 1
    assert value(s, "modelport_queued", backend="a") == 0
    assert value(s, "modelport_queued", backend="b") == 0
