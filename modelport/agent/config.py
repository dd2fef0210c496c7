"""agent.toml: usepod-agent's config file, read as it reads it, plus modelport's own table.

The types below are the file's shape (usepod-agent 0.3.x `src/config.rs`); `[modelport]`
holds what only modelport reads, so a file written for usepod-agent works unchanged and a
file with a `[modelport]` table still works with usepod-agent (it ignores unknown tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelport.wire.provider import DEFAULT_COORDINATOR_URL

DEFAULT_KEY_PATH = "~/.usepod-agent/identity.key"
DEFAULT_PROMETHEUS_ADDR = "127.0.0.1:9090"
# Engine kinds usepod-agent knows; local ones need `url`, BYOK ones `api_key_env`.
LOCAL_KINDS = ("vllm", "llamacpp", "lmstudio", "ollama")
BYOK_KINDS = ("openrouter", "venice")


@dataclass(frozen=True)
class Operator:
    display_name: str = ""
    wallet: str = ""
    contact_email: str | None = None


@dataclass(frozen=True)
class BackendEntry:
    """One `[[backends]]` row."""

    kind: str
    url: str | None = None
    api_key_env: str | None = None  # the environment variable holding the key, never the key
    markup: float | None = None
    models: tuple[str, ...] | None = None  # an allow-list; None: every model it lists


@dataclass(frozen=True)
class ModelPrice:
    input_per_1m: int
    output_per_1m: int


@dataclass(frozen=True)
class Pricing:
    """USDC micro-units per million tokens."""

    default_input_per_1m: int
    default_output_per_1m: int
    models: dict[str, ModelPrice] = field(default_factory=dict)

    def price(self, model_id: str) -> ModelPrice:
        return self.models.get(
            model_id, ModelPrice(self.default_input_per_1m, self.default_output_per_1m)
        )


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 8  # 1..256
    max_tokens_per_minute: int | None = None


@dataclass(frozen=True)
class Observability:
    prometheus_addr: str = DEFAULT_PROMETHEUS_ADDR
    log_level: str = "info"


@dataclass(frozen=True)
class ModelportSettings:
    """`[modelport]`: what only modelport's agent reads."""

    rediscover_s: float = 300.0  # how often engines are looked for again
    discover: bool = True  # also serve engines found on this machine's usual ports
    ledger_path: Path | None = None  # None: the user data dir's agent-ledger.sqlite
    first_byte_timeout_s: float = 120.0


@dataclass(frozen=True)
class AgentConfig:
    coordinator_url: str = DEFAULT_COORDINATOR_URL
    enrollment_code: str | None = None
    key_path: str = DEFAULT_KEY_PATH
    backends: tuple[BackendEntry, ...] = ()
    pricing: Pricing = field(default_factory=lambda: Pricing(1, 1))
    limits: Limits = field(default_factory=Limits)
    observability: Observability = field(default_factory=Observability)
    operator: Operator = field(default_factory=Operator)
    modelport: ModelportSettings = field(default_factory=ModelportSettings)
    source: Path | None = None  # the file it was read from
