"""The provider-agent protocol's frames: what an agent and a hub say over their WebSocket.

The protocol is the public usepod-agent's (0.3.x, `src/ws_client.rs`, `job_executor.rs`,
`heartbeat.rs`, `discovery.rs`); [wire.md](../../docs/wire.md) has its facts. Every frame is
one JSON text message with a `type`. Both sides use these Structs: `modelport agent`
encodes the agent's frames and decodes the hub's, `modelport serve --hub` the reverse.

Two details carry weight on the hot path:
- a job's `request` is kept as raw JSON bytes (`msgspec.Raw`): the agent hands it to the
  service as a client body, and the hub never builds it twice;
- a chunk's `data` is `bytes`: msgspec reads and writes it as standard base64 itself.

Decoding is lenient where the protocol is loose (a heartbeat's figures default to zero; a
job's `format` to "openai" and `deadline_ms` to 60000, as usepod-agent reads them) and
strict where a mistake would do harm (a job without an id or a model is malformed).
A frame of a type the reader does not know decodes to None: both sides ignore it.
"""

from __future__ import annotations

from typing import Final, Literal, TypeVar

import msgspec

from modelport.types import WireFormat

# How often an agent reports (usepod-agent's heartbeat.rs INTERVAL).
HEARTBEAT_INTERVAL_S: Final = 15.0
# A job without `deadline_ms` has this long (ws_client.rs parse_job).
DEFAULT_DEADLINE_MS: Final = 60_000
# Reconnect backoff: 1 s doubling to 60 s, times a jitter in [0.8, 1.2), back to 1 s after
# an authenticated session (ws_client.rs run).
BACKOFF_START_S: Final = 1.0
BACKOFF_MAX_S: Final = 60.0
BACKOFF_JITTER: Final = (0.8, 1.2)
# A planned disconnect: Close 1001 (going away) with one of these reasons.
CLOSE_GOING_AWAY: Final = 1001
DRAIN_DEPLOY: Final = "drain:deploy"
DRAIN_OPERATOR: Final = "drain:operator"
DEFAULT_COORDINATOR_URL: Final = "wss://api.usepod.ai/provider/connect"

# The extensions a modelport agent advertises in `metadata.features` (docs/wire.md):
# WHOLE_JOBS: a job with `"stream": false` is answered with the engine's whole JSON body;
# RELAY_JOBS: a job with `"relay": true` is the client's body, run as the client sent it,
# and its bytes are the client's answer as a gateway would send it (the hub relays them
# without reading them: no second meter).
WHOLE_JOBS: Final = "whole_jobs"
RELAY_JOBS: Final = "relay_jobs"

JobFormat = Literal["openai", "anthropic"]
# A job's `format` and the client dialect it is: what a modelport agent serves, in the
# order it says so in `metadata.formats` (usepod-agent says nothing, and serves "openai").
JOB_FORMATS: Final[dict[str, WireFormat]] = {
    "openai": WireFormat.OPENAI,
    "anthropic": WireFormat.ANTHROPIC,
}
# job_error's codes (job_executor.rs map_backend_error and dispatch).
ErrorCode = Literal[
    "out_of_capacity",
    "model_not_loaded",
    "backend_unreachable",
    "backend_timeout",
    "auth_rejected_by_backend",
    "internal",
]
# How a modelport agent marks a job_error `internal` that is the request's own fault (an
# invalid request): a modelport hub answers it 400, with no fallback to another agent.
INVALID_PREFIX: Final = "invalid request: "
ERROR_CODES: Final[frozenset[str]] = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]


class FrameError(ValueError):
    """A frame that is not JSON, has no `type`, or misses a field its type needs."""


# -- hub -> agent -------------------------------------------------------------------


class AuthChallenge(msgspec.Struct, tag_field="type", tag="auth_challenge"):
    nonce: bytes  # std base64 on the wire; the agent signs the raw bytes


class AuthOk(msgspec.Struct, tag_field="type", tag="auth_ok"):
    provider_id: str | None = None


class AuthFailed(msgspec.Struct, tag_field="type", tag="auth_failed"):
    reason: str = "unknown"


class Job(msgspec.Struct, tag_field="type", tag="job"):
    job_id: str
    model_id: str
    request: msgspec.Raw  # the client body, JSON bytes as the hub sent them
    format: str = "openai"  # "openai" | "anthropic"; usepod-agent reads any other as openai
    deadline_ms: int = DEFAULT_DEADLINE_MS
    # modelport's extension (WHOLE_JOBS): `false` asks for the whole answer, run as the
    # client sent it. Unset (a streamed job) is never encoded, so every frame a usepod-style
    # agent gets is as before; the hub sets it only for an agent that advertises the feature.
    stream: bool | msgspec.UnsetType = msgspec.UNSET
    # modelport's extension (RELAY_JOBS): `true` asks for the client's answer, run as the
    # client sent it (streamed or not as its body says). Unset is never encoded, as above.
    relay: bool | msgspec.UnsetType = msgspec.UNSET

    @property
    def streamed(self) -> bool:
        return self.stream is not False

    @property
    def relayed(self) -> bool:
        return self.relay is True


class JobCancel(msgspec.Struct, tag_field="type", tag="job_cancel"):
    job_id: str


HubFrame = AuthChallenge | AuthOk | AuthFailed | Job | JobCancel


# -- agent -> hub -------------------------------------------------------------------


class AuthResponse(msgspec.Struct, tag_field="type", tag="auth_response", omit_defaults=True):
    pubkey: str  # std base64 of the 32-byte Ed25519 public key
    signature: str  # std base64 of the signature over the raw nonce bytes
    agent_version: str = ""
    enrollment_code: str | None = None  # only when no provider_id is stored yet


class CapabilityModel(msgspec.Struct, omit_defaults=True):
    model_id: str
    input_per_1m: int  # USDC micro-units per million tokens
    output_per_1m: int
    max_concurrent: int
    backend: str  # the engine kind: "vllm", "llamacpp", "openrouter", ...
    context_window: int | None = None  # omitted when unknown


class CapabilityLimits(msgspec.Struct):
    max_concurrent_total: int
    max_tokens_per_minute: int | None = None  # sent as null when unset, as usepod-agent does


class AgentMetadata(msgspec.Struct, omit_defaults=True):
    agent_version: str = ""
    # modelport agents say which job formats they serve; usepod-agent 0.3.x says nothing
    # (and serves only "openai" faithfully).
    formats: tuple[str, ...] | None = None
    # modelport's protocol extensions this agent serves (WHOLE_JOBS); omitted when none, so
    # a usepod-style frame is unchanged (usepod's coordinator ignores unknown metadata).
    features: tuple[str, ...] | None = None


class Capabilities(msgspec.Struct, tag_field="type", tag="capabilities"):
    models: list[CapabilityModel]
    limits: CapabilityLimits
    metadata: AgentMetadata = msgspec.field(default_factory=AgentMetadata)


class Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat"):
    queue_depth: int = 0
    tokens_per_sec_p50: float = 0.0
    p50_latency_ms: int = 0
    p95_latency_ms: int = 0
    error_rate_60s: float = 0.0
    last_error_at: str | None = None  # RFC 3339, UTC
    last_error_code: str | None = None


class JobChunk(msgspec.Struct, tag_field="type", tag="job_chunk"):
    job_id: str
    data: bytes  # raw upstream bytes, std base64 on the wire; may split an SSE event


class Tokens(msgspec.Struct):
    """usepod-agent sends each count twice, under both names; so do we."""

    input: int = 0
    output: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class JobDone(msgspec.Struct, tag_field="type", tag="job_done"):
    job_id: str
    tokens: Tokens = msgspec.field(default_factory=Tokens)
    duration_ms: int = 0


class JobError(msgspec.Struct, tag_field="type", tag="job_error"):
    job_id: str
    error_code: str  # one of ERROR_CODES; a hub reads an unknown one as "internal"
    message: str = ""
    tokens_emitted: int = 0  # tokens (modelport) or bytes (usepod-agent 0.3.x) sent so far


AgentFrame = AuthResponse | Capabilities | Heartbeat | JobChunk | JobDone | JobError


def tokens(input_tokens: int, output_tokens: int) -> Tokens:
    return Tokens(input_tokens, output_tokens, input_tokens, output_tokens)


# -- encoding and decoding ------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_hub_decoder = msgspec.json.Decoder(HubFrame)
_agent_decoder = msgspec.json.Decoder(AgentFrame)


class _Envelope(msgspec.Struct):
    type: str | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)


def encode(frame: HubFrame | AgentFrame) -> bytes:
    """One frame as the JSON text of a WebSocket message."""
    return _encoder.encode(frame)


def decode_hub_frame(data: bytes | str) -> HubFrame | None:
    """A frame the hub sent; None for a type the agent does not know (it ignores it)."""
    return _decode(_hub_decoder, data, "hub")


def decode_agent_frame(data: bytes | str) -> AgentFrame | None:
    """A frame an agent sent; None for a type the hub does not know (it ignores it)."""
    return _decode(_agent_decoder, data, "agent")


F = TypeVar("F")


def _decode(decoder: msgspec.json.Decoder[F], data: bytes | str, side: str) -> F | None:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        kind = _frame_type(data)
        if kind is not None and kind not in _known(side):
            return None
        raise FrameError(f"malformed {kind or 'untyped'} frame: {exc}") from None
    except msgspec.DecodeError:
        raise FrameError("frame is not JSON") from None


def _frame_type(data: bytes | str) -> str | None:
    try:
        return _envelope_decoder.decode(data).type
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _known(side: str) -> frozenset[str]:
    union = HubFrame if side == "hub" else AgentFrame
    return frozenset(cls.__struct_config__.tag for cls in union.__args__)
