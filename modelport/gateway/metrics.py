"""Prometheus metrics for the gateway, on a registry of its own.

Each `Metrics` owns a private `CollectorRegistry`, never the global one, so several gateways
in one process (tests, embedding) do not collide and `/metrics` shows only the gateway's own
series (no process or platform collectors).

Label cardinality stays bounded because every label value comes from a bounded set:
`backend` from configured backend ids, `status` from HTTP codes, `format` from wire formats,
`error` from error class names. `model` is the exception, since clients name models: the
caller passes `record.model` only once the router resolved it, and `""` for a model nobody
serves (so garbage names never become series), and on top of that at most `MODEL_LABEL_CAP`
distinct models get their own label; later ones share `OTHER_MODEL`.

Per request, the children are looked up in `Children` (a dict of our own), not through
`labels()`: it holds what the metric holds, so the same bounds apply to it.

`backend` values come and go with the router's upstreams (hub agents join and leave), so a
backend the router dropped loses its series: its state gauges at once (`forget_backend_state`:
a gone backend has no state), what it served once it is gone for good (`forget_backend`; the
gateway waits `FORGET_GONE_BACKEND_S` for it to come back, docs/architecture.md, Metrics).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

from modelport.records import RequestRecord

# What the body is: `generate_latest` escapes names the classic way and ours are plain ASCII.
# Spelled out because prometheus-client's CONTENT_TYPE_LATEST moved between releases
# (0.26 says "version=1.0.0"), and every Prometheus and scraper reads 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

MODEL_LABEL_CAP = 200
OTHER_MODEL = "other"

# How long what a backend served stays on /metrics after the router dropped it. Long enough
# for every scraper to read its last counts (scrapes come every 15 s to 1 min) and for an
# agent whose connection dropped to come back (its reconnect backoff tops out at a minute)
# without its counters starting again from zero; short enough that agents gone for good do
# not pile up.
FORGET_GONE_BACKEND_S = 300.0

# Time to first token: a warm small model on a GPU answers in a few ms, a cold load or a long
# prompt on a CPU takes tens of seconds.
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
# Whole requests: long generations run for minutes.
DURATION_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)


class ModelLabels:
    """Model names as label values, bounded: the first `cap` models get their own label,
    later ones share `OTHER_MODEL`; "" stays "" (a model nobody serves). Thread-safe, since
    the gateway renders its registry off the event loop. The agent's metrics use it too."""

    def __init__(self, cap: int = MODEL_LABEL_CAP) -> None:
        self.cap = cap
        self._models: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, model: str) -> str:
        if not model or model in self._models:
            return model
        with self._lock:
            if model in self._models:
                return model
            if len(self._models) >= self.cap:
                return OTHER_MODEL
            self._models.add(model)
            return model


Metric = TypeVar("Metric", bound=MetricWrapperBase)


class Children(Generic[Metric]):
    """A labelled metric's children by their label values. prometheus-client's `labels()`
    checks its arguments, turns each value into a str and takes a lock on every call (about
    1.3 us; a dict lookup is 0.1), and a request makes several. Holds exactly the children
    the metric itself holds (one per label-value tuple asked for, until `remove_where`
    drops it from both), so it grows only as the metric's series do; values must be the
    strs `labels()` would make."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Metric] = {}

    def __call__(self, *values: str) -> Metric:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child

    def remove_where(self, position: int, value: str) -> None:
        """Drop every series whose label at `position` is `value`, from the metric and from
        here: a child left here would count into a series the metric no longer shows."""
        for values in [v for v in self._children if v[position] == value]:
            del self._children[values]
            with contextlib.suppress(KeyError):  # older prometheus-clients raise for a gone one
                self.metric.remove(*values)


class Metrics:
    """The gateway's counters, histograms and gauges; `observe` one record per request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._model_labels = ModelLabels()
        r = self.registry
        self.requests = Counter(
            "modelport_requests",
            "Finished requests, by the status the client got.",
            ["model", "backend", "status", "format"],
            registry=r,
        )
        self.tokens = Counter(
            "modelport_tokens",
            "Tokens read (in) and generated (out).",
            ["model", "backend", "direction"],
            registry=r,
        )
        self.ttft = Histogram(
            "modelport_time_to_first_token_seconds",
            "Time from the request to the first byte of the answer.",
            ["model", "backend"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "modelport_request_duration_seconds",
            "Time from the request to its last byte.",
            ["model", "backend", "stream"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.stream_errors = Counter(
            "modelport_stream_errors",
            "Streams that failed after the 200 status had gone out.",
            ["backend", "error"],
            registry=r,
        )
        self._requests = Children(self.requests)
        self._tokens = Children(self.tokens)
        self._ttft = Children(self.ttft)
        self._duration = Children(self.duration)
        self._stream_errors = Children(self.stream_errors)
        # What a backend served, each with the position of `backend` among its labels.
        self._served = (
            (self._requests, 1),
            (self._tokens, 1),
            (self._ttft, 1),
            (self._duration, 1),
            (self._stream_errors, 0),
        )
        self.backend_ready = Gauge(
            "modelport_backend_ready",
            "1 when the backend passed its last health check.",
            ["backend"],
            registry=r,
        )
        self.in_flight = Gauge(
            "modelport_in_flight", "Requests the backend is serving now.", ["backend"], registry=r
        )
        self.queued = Gauge(
            "modelport_queued", "Requests waiting for a backend slot.", ["backend"], registry=r
        )

    def model_label(self, model: str) -> str:
        """The label for `model`: itself for the first `MODEL_LABEL_CAP` models, then "other"."""
        return self._model_labels(model)

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request. `record.model` must be resolved, or "" (see module doc)."""
        model = self.model_label(record.model)
        backend = record.backend
        self._requests(model, backend, str(record.status), record.format).inc()
        self._tokens(model, backend, "in").inc(record.input_tokens)
        self._tokens(model, backend, "out").inc(record.output_tokens)
        if record.ttft_ms is not None:
            self._ttft(model, backend).observe(record.ttft_ms / 1000)
        stream = "true" if record.stream else "false"
        self._duration(model, backend, stream).observe(record.duration_ms / 1000)
        if record.status == 200 and record.error:
            self._stream_errors(backend, record.error).inc()

    def set_backend_state(self, backend: str, *, ready: bool, in_flight: int, queued: int) -> None:
        """Publish what the router knows of one backend (called by its health and admission)."""
        self.backend_ready.labels(backend).set(1 if ready else 0)
        self.in_flight.labels(backend).set(in_flight)
        self.queued.labels(backend).set(queued)

    def forget_backend_state(self, backend: str) -> None:
        """Drop `backend`'s ready, in-flight and queued gauges: the router no longer has it,
        and a stuck last value would say it is still there."""
        for gauge in (self.backend_ready, self.in_flight, self.queued):
            with contextlib.suppress(KeyError):
                gauge.remove(backend)

    def forget_backend(self, backend: str) -> None:
        """Drop every series of `backend`: its state and what it served (it is gone for good)."""
        self.forget_backend_state(backend)
        for children, position in self._served:
            children.remove_where(position, backend)

    def render(self) -> tuple[bytes, str]:
        """The body and content type for `GET /metrics` (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry), CONTENT_TYPE
