"""usepod-agent 0.3.3's backend side, for the UsepodAgent fake (usepod_agent.py).

From Sortis-AI/usepod-agent (tag v0.3.3 = d63ebc0):
- src/backend/http.rs `stream_chat_completions`: POST {base}/v1/chat/completions with the
  job's request, `stream` forced true, `stream_options` = {"include_usage": true} only when
  the request has none, `model` = the job's model_id only when it has none; the request
  times out after max(deadline_ms, 5 s); upstream bytes are relayed as they are read;
  `SseUsageParser` reads usage from `data:` lines; a non-2xx answer is `BadStatus`, a
  refused connection `Unreachable`, a timeout `Timeout`, a broken stream `Transport`.
- src/backend/mod.rs `BackendError`'s messages; job_executor.rs `map_backend_error`.
- http.rs `parse_openai_models`, backend/{vllm,llamacpp,lmstudio,ollama}.rs `health` and
  `list_models`, discovery.rs `run` (prices, allow-list, dropped unhealthy backends).
JSON goes out as serde_json writes a `Value` (no `preserve_order` in its Cargo.toml): compact,
keys sorted, non-ASCII as is (`dumps`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

AGENT_VERSION = "0.3.3"
USER_AGENT = f"usepod-agent/{AGENT_VERSION}"
# http.rs build_client: 30 s overall (a job's request sets its own), 10 s to connect.
DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
# vllm.rs, llamacpp.rs: GET /health; ollama.rs: /api/tags; lmstudio.rs: /v1/models.
HEALTH_PATHS = {
    "vllm": "/health",
    "llamacpp": "/health",
    "ollama": "/api/tags",
    "lmstudio": "/v1/models",
}
U32 = 2**32


def dumps(value: Any) -> str:
    """JSON as serde_json's `to_string` of a `Value` writes it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # serde_json refuses NaN and Infinity


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def as_u64(value: Any) -> int | None:
    """serde_json's `Value::as_u64`: a non-negative integer (not a float, not a bool)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64:
        return value
    return None


# -- errors (backend/mod.rs BackendError, job_executor.rs map_backend_error) ------------------


class BackendError(Exception):
    code = "internal"


class Unreachable(BackendError):
    code = "backend_unreachable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"backend unreachable: {detail}")


class BackendTimeout(BackendError):
    code = "backend_timeout"

    def __init__(self) -> None:
        super().__init__("backend timeout")


class BadStatus(BackendError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"backend returned HTTP {status}: {body}")
        self.status = status
        # 401/403 only: a 404 (unknown model), 429 or 5xx is "internal" in 0.3.3
        if status in (401, 403):
            self.code = "auth_rejected_by_backend"


class Transport(BackendError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"transport error: {detail}")


class Other(BackendError):
    """BackendError::Other: the message as is (the job sink's "ws outbound ..." errors)."""


# -- usage (http.rs SseUsageParser) --------------------------------------------------------


class UsageParser:
    """Reads `usage` from `data:` lines across chunk boundaries; the last one wins."""

    def __init__(self) -> None:
        self.pending = ""
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def push(self, data: bytes) -> None:
        # String::from_utf8_lossy per chunk, as http.rs does (a split character is mangled)
        self.pending += data.decode("utf-8", errors="replace")
        while (index := self.pending.find("\n")) >= 0:
            line, self.pending = self.pending[: index + 1], self.pending[index + 1 :]
            self._line(line.rstrip("\r\n"))

    def finish(self) -> tuple[int | None, int | None]:
        if self.pending:
            line, self.pending = self.pending, ""
            self._line(line.rstrip("\r\n"))
        return self.input_tokens, self.output_tokens

    def _line(self, line: str) -> None:
        if not line.startswith("data:"):
            return
        data = line[5:].strip()
        if not data or data == "[DONE]":
            return
        try:
            value = loads(data)
        except ValueError:
            return
        usage = value.get("usage") if isinstance(value, dict) else None
        if not isinstance(usage, dict):
            return
        found = _pick_u32(usage, ("input_tokens", "prompt_tokens", "input"))
        if found is not None:
            self.input_tokens = found
        found = _pick_u32(usage, ("output_tokens", "completion_tokens", "output"))
        if found is not None:
            self.output_tokens = found


def _pick_u32(usage: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = as_u64(usage.get(key))
        if value is not None and value < U32:
            return value
    return None


# -- one backend ----------------------------------------------------------------------------


class ChunkSink(Protocol):
    async def send_chunk(self, data: bytes) -> None: ...


@dataclass
class JobSpec:
    """backend/mod.rs `Job`, as ws_client.rs `parse_job` builds it."""

    job_id: str  # the UUID as serde writes it: lowercase, hyphenated
    model_id: str
    request: Any
    format: str  # "openai" | "anthropic"; no backend looks at it
    deadline_ms: int


@dataclass
class ModelEntry:
    """backend/mod.rs `BackendModel`."""

    model_id: str
    context_window: int | None


class HttpBackend:
    """An OpenAI-compatible local backend (vllm.rs, llamacpp.rs, lmstudio.rs, ollama.rs)."""

    def __init__(self, kind: str, url: str, session: aiohttp.ClientSession) -> None:
        self.kind = kind
        self.base_url = url.rstrip("/")
        self.session = session

    async def healthy(self) -> bool:
        """The adapter's `health()`: any 2xx on its health path."""
        try:
            await self._get(self.base_url + HEALTH_PATHS.get(self.kind, "/health"))
        except BackendError:
            return False
        return True

    async def list_models(self) -> list[ModelEntry]:
        value = loads(await self._get(self.base_url + "/v1/models"))
        models = parse_openai_models(value)
        bare = value.get("id") if isinstance(value, dict) else None
        if not models and self.kind == "llamacpp" and isinstance(bare, str):
            models.append(ModelEntry(bare, None))  # llamacpp.rs: older builds' bare object
        return models

    async def _get(self, url: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        try:
            async with self.session.get(url, timeout=timeout) as response:
                body = await response.read()
        except TimeoutError:
            raise BackendTimeout() from None
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(str(exc)) from None
        except aiohttp.ClientError as exc:
            raise Transport(str(exc)) from None
        if not 200 <= response.status < 300:
            raise BadStatus(response.status, body.decode("utf-8", errors="replace"))
        return body

    async def execute(self, job: JobSpec, sink: ChunkSink) -> tuple[int | None, int | None, int]:
        """Stream the job; (input tokens, output tokens, duration ms) from the stream's usage."""
        body = job.request
        if isinstance(body, dict):
            body = dict(body)
            body["stream"] = True
            body.setdefault("stream_options", {"include_usage": True})
            body.setdefault("model", job.model_id)
        total = max(job.deadline_ms / 1000, 5.0)
        timeout = aiohttp.ClientTimeout(total=total, connect=CONNECT_TIMEOUT_S)
        headers = {"Content-Type": "application/json"}
        started = time.monotonic()
        usage = UsageParser()
        try:
            async with self.session.post(
                self.base_url + "/v1/chat/completions",
                data=dumps(body).encode(),
                headers=headers,
                timeout=timeout,
            ) as response:
                if not 200 <= response.status < 300:
                    text = (await response.read()).decode("utf-8", errors="replace")
                    raise BadStatus(response.status, text)
                # each HTTP chunk (or read) as the engine's writes split them: hyper's frames
                async for data, _ in response.content.iter_chunks():
                    if not data:
                        continue
                    usage.push(data)
                    await sink.send_chunk(data)
        except TimeoutError:
            raise BackendTimeout() from None
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(str(exc)) from None
        except aiohttp.ClientError as exc:
            raise Transport(str(exc)) from None
        duration_ms = int((time.monotonic() - started) * 1000) % U32
        input_tokens, output_tokens = usage.finish()
        return input_tokens, output_tokens, duration_ms


def parse_openai_models(value: Any) -> list[ModelEntry]:
    """http.rs `parse_openai_models`: `data[].id`; the context window from the first of
    context_length, max_model_len, context_window PRESENT (a null there means unknown)."""
    data = value.get("data") if isinstance(value, dict) else None
    if not isinstance(data, list):
        return []
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        window: int | None = None
        for key in ("context_length", "max_model_len", "context_window"):
            if key in item:
                found = as_u64(item[key])
                window = None if found is None else found % U32  # `as u32`
                break
        out.append(ModelEntry(item["id"], window))
    return out


@dataclass
class Discovery:
    """discovery.rs `run` for one configured backend: what `capabilities` lists."""

    kind: str = "vllm"
    allow: list[str] | None = None  # [[backends]] models
    default_prices: tuple[int, int] = (500_000, 750_000)  # agent.example.toml [pricing]
    prices: dict[str, tuple[int, int]] | None = None  # [pricing.models]
    max_concurrent: int = 8
    max_tokens_per_minute: int | None = None

    async def models(self, backend: HttpBackend) -> list[dict[str, Any]]:
        """The resolved models, deduplicated and sorted by id; [] when the backend is down."""
        if not await backend.healthy():
            return []
        try:
            found = await backend.list_models()
        except (BackendError, ValueError):
            return []
        by_id: dict[str, dict[str, Any]] = {}
        for entry in found:
            if self.allow is not None and entry.model_id not in self.allow:
                continue
            price_in, price_out = (self.prices or {}).get(entry.model_id, self.default_prices)
            if price_in == 0 or price_out == 0:
                continue  # "no pricing; dropping model"
            model: dict[str, Any] = {
                "model_id": entry.model_id,
                "input_per_1m": price_in,
                "output_per_1m": price_out,
                "max_concurrent": self.max_concurrent,
                "backend": self.kind,
            }
            if entry.context_window is not None:
                model["context_window"] = entry.context_window
            by_id.setdefault(entry.model_id, model)  # one backend: equal priority, first wins
        return [by_id[key] for key in sorted(by_id)]

    def capabilities(self, models: list[dict[str, Any]]) -> dict[str, Any]:
        """DiscoveryResult::to_capabilities."""
        return {
            "type": "capabilities",
            "models": models,
            "limits": {
                "max_concurrent_total": self.max_concurrent,
                "max_tokens_per_minute": self.max_tokens_per_minute,
            },
            "metadata": {"agent_version": AGENT_VERSION},
        }
