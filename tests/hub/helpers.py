"""Test-side stand-ins for what the hub core (H4) builds, per /work/wt/notes/CONTRACTS.md:
an agent upstream's backend id is "agent:{provider_id}" and its models carry the agent's
advertised prices in `BackendModel.native["input_per_1m"/"output_per_1m"]`."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import msgspec

from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.hub.access import provider_id_for
from modelport.types import BackendModel
from modelport.wire.provider import CapabilityModel, Heartbeat


def key(n: int) -> str:
    """A well-formed agent public key: standard base64 of 32 bytes."""
    return base64.b64encode(bytes([n]) * 32).decode()


class PricedBackend(OpenAICompatBackend):
    """A real OpenAI-compatible backend (over a protocol fake) whose models advertise
    prices, as an agent's do: the smallest stand-in for the hub's AgentBackend."""

    def __init__(self, url: str, prices: dict[str, tuple[int, int]], *, name: str) -> None:
        super().__init__("vllm", url, name=name)
        self.prices = prices

    async def list_models(self) -> list[BackendModel]:
        return [self._priced(model) for model in await super().list_models()]

    def _priced(self, model: BackendModel) -> BackendModel:
        price = self.prices.get(model.id)
        if price is None:
            return model
        native = {**model.native, "input_per_1m": price[0], "output_per_1m": price[1]}
        return msgspec.structs.replace(model, native=native)


def agent_backend(url: str, n: int, prices: dict[str, tuple[int, int]]) -> PricedBackend:
    """The agent with key(n), as the hub would name its backend."""
    return PricedBackend(url, prices, name=f"agent:{provider_id_for(key(n))}")


@dataclass(frozen=True)
class View:
    """The fields of H4's AgentView (CONTRACTS: modelport/hub/link.py)."""

    provider_id: str
    pubkey: str
    upstream: str
    agent_version: str
    address: str
    connected_at: float
    heartbeat_age_s: float | None
    heartbeat: Heartbeat | None
    models: tuple[CapabilityModel, ...]
    formats: tuple[str, ...]
    in_flight: int
    ready: bool


@dataclass
class StandInHub:
    """Provides `agents()` like the hub core's Hub does."""

    views: list[View] = field(default_factory=list)

    def agents(self) -> list[View]:
        return list(self.views)


def view(n: int, models: dict[str, tuple[int, int]], **kw: object) -> View:
    provider_id = provider_id_for(key(n))
    base: dict[str, object] = {
        "provider_id": provider_id,
        "pubkey": key(n),
        "upstream": f"agent-{provider_id[5:13]}",
        "agent_version": "0.3.3",
        "address": f"10.0.0.{n}",
        "connected_at": 1_800_000_000.0,
        "heartbeat_age_s": 3.5,
        "heartbeat": Heartbeat(
            queue_depth=1,
            tokens_per_sec_p50=40.0,
            p50_latency_ms=120,
            p95_latency_ms=300,
            error_rate_60s=0.0,
            last_error_at=None,
            last_error_code=None,
        ),
        "models": tuple(
            CapabilityModel(
                model_id=name,
                input_per_1m=price[0],
                output_per_1m=price[1],
                max_concurrent=4,
                backend="llamacpp",
                context_window=4096,
            )
            for name, price in models.items()
        ),
        "formats": ("openai", "anthropic"),
        "in_flight": 0,
        "ready": True,
    }
    base.update(kw)
    return View(**base)  # type: ignore[arg-type]
