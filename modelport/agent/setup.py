"""`modelport agent setup`: pair this machine with a hub account, then write agent.toml.

The device-code flow is usepod-agent's (0.3.x `src/setup.rs`):

1. load or make the identity (before pairing, so a re-run after a half-done pairing keeps
   the same key);
2. look for local engines (modelport's discovery, where setup.rs probes four ports);
3. `POST {base}/v1/host/pair/issue {"agent_pubkey"}` -> `{pair_code, poll_token, expires_at}`;
4. show the code and the page to enter it on, then `POST {base}/v1/host/pair/poll
   {"poll_token", "capabilities": {"backends": [{kind, url, models}], "agent_version"}}`
   every 800 ms: `{"status": "pending"}` until `"active"` (with `host_token`,
   `provider_id` and `model_config`, the models the operator activated and their prices)
   or `"expired"`;
5. write agent.toml as setup.rs renders it.

`base` is the coordinator's HTTP(S) address; the WebSocket URL written to agent.toml is
the same host with ws(s):// and `/provider/connect`. Where modelport differs from
setup.rs (docs/agent.md, "Setup"): it writes to `--config` when given, keeps the
provider id in the identity file, takes a ws(s):// URL too, keeps a replaced agent.toml
as agent.toml.bak, and writes only usepod-agent's kinds as [[backends]] (others found are
served through discovery), so the file still works with usepod-agent.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from modelport import __version__
from modelport.agent.config import LOCAL_KINDS, MAX_CONCURRENT_RANGE, parse_agent_config
from modelport.agent.identity import Identity, load_or_create
from modelport.scrub import public_message

__all__ = [
    "DEFAULT_SETUP_COORDINATOR",
    "POLL_INTERVAL_S",
    "ActivatedModel",
    "DetectedEngine",
    "Paired",
    "SetupError",
    "coordinator_endpoints",
    "detect_engines",
    "render_config",
    "run_setup",
]

DEFAULT_SETUP_COORDINATOR = "https://api.usepod.ai"  # setup.rs DEFAULT_COORDINATOR
POLL_INTERVAL_S = 0.8  # setup.rs POLL_INTERVAL
HTTP_TIMEOUT_S = 30.0  # setup.rs's reqwest client timeout
PROBE_TIMEOUT_S = 0.8  # setup.rs PROBE_TIMEOUT
CONNECT_PATH = "/provider/connect"
AGENT_VERSION = f"modelport/{__version__}"
# setup.rs: a model the operator activated without a concurrency gets 4; so does the file
# when none was activated.
DEFAULT_MAX_CONCURRENT = 4
# setup.rs's placeholder prices (USDC micro-units per million tokens: $0.50 and $1.00).
PLACEHOLDER_INPUT_PER_1M = 500_000
PLACEHOLDER_OUTPUT_PER_1M = 1_000_000


class SetupError(Exception):
    """Pairing could not finish; the message says where it stopped."""


@dataclass(frozen=True)
class DetectedEngine:
    kind: str
    url: str
    models: tuple[str, ...]


@dataclass(frozen=True)
class ActivatedModel:
    """One entry of `model_config` (setup.rs ActivatedModel, its defaults included)."""

    model_id: str
    input_per_1m: int = 0
    output_per_1m: int = 0
    max_concurrent: int = DEFAULT_MAX_CONCURRENT


@dataclass(frozen=True)
class Paired:
    host_token: str  # the coordinator's; never used to connect (the key is), never kept whole
    provider_id: str
    models: tuple[ActivatedModel, ...]


@dataclass(frozen=True)
class SetupResult:
    paired: Paired
    config_path: Path
    identity: Identity
    engines: tuple[DetectedEngine, ...]
    ws_url: str


def coordinator_endpoints(coordinator: str) -> tuple[str, str]:
    """(HTTP base for pairing, WebSocket URL for agent.toml) from either kind of URL.

    setup.rs takes an http(s) base and turns it into `ws(s)://.../provider/connect`; a
    ws(s) URL (what agent.toml holds) is taken too, `/provider/connect` or not.
    """
    url = coordinator.strip().rstrip("/")
    parts = urlsplit(url)
    if not parts.netloc:
        raise SetupError(f"--coordinator {coordinator!r} is not a URL (expected https://host)")
    to_http = {"https": "https", "http": "http", "wss": "https", "ws": "http"}
    if parts.scheme not in to_http:
        raise SetupError(f"--coordinator scheme must be https, http, wss or ws: {coordinator!r}")
    base = f"{to_http[parts.scheme]}://{parts.netloc}{parts.path.removesuffix(CONNECT_PATH)}"
    ws_scheme = "wss" if to_http[parts.scheme] == "https" else "ws"
    return base, f"{ws_scheme}://{base.split('://', 1)[1]}{CONNECT_PATH}"


def pair_page(base: str) -> str:
    """Where the operator enters the code (setup.rs print_pair_banner)."""
    return "https://usepod.ai/host/pair" if "api.usepod.ai" in base else f"{base}/host/pair"


async def detect_engines(
    *, scan: bool = True, extra_urls: Iterable[str] = (), probe_s: float = PROBE_TIMEOUT_S
) -> list[DetectedEngine]:
    """Engines on this machine's usual ports (and at `extra_urls`) that list a model.

    setup.rs keeps only engines with models; so does this.
    """
    from modelport.discovery import DEFAULT_PORTS, discover

    found = await discover(
        ports=DEFAULT_PORTS if scan else (), timeout=probe_s, extra_urls=list(extra_urls)
    )
    return [
        DetectedEngine(engine.kind, engine.url, tuple(m.id for m in engine.models))
        for engine in found
        if engine.models
    ]


def capabilities_payload(engines: Iterable[DetectedEngine]) -> dict[str, Any]:
    """setup.rs capabilities_payload: what the dashboard shows while the operator picks."""
    return {
        "backends": [{"kind": e.kind, "url": e.url, "models": list(e.models)} for e in engines],
        "agent_version": AGENT_VERSION,
    }


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    try:
        async with session.post(url, json=body) as response:
            text = await response.text(errors="replace")
            if not 200 <= response.status < 300:
                raise SetupError(
                    f"POST {url}: HTTP {response.status}: {public_message(text.strip()[:300])}"
                )
    except aiohttp.ClientError as exc:
        raise SetupError(f"POST {url}: cannot reach the coordinator: {exc}") from None
    except TimeoutError:
        raise SetupError(f"POST {url}: the coordinator did not answer in time") from None
    try:
        return json.loads(text)
    except ValueError:
        raise SetupError(f"POST {url}: the answer is not JSON") from None


def _string(answer: Any, name: str, where: str) -> str:
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value:
        raise SetupError(f"{where}: the answer has no {name}")
    return value


async def issue_pair_code(
    session: aiohttp.ClientSession, base: str, identity: Identity
) -> tuple[str, str, str]:
    """(pair_code, poll_token, expires_at)."""
    url = f"{base}/v1/host/pair/issue"
    answer = await _post(session, url, {"agent_pubkey": identity.public_key_b64})
    return (
        _string(answer, "pair_code", url),
        _string(answer, "poll_token", url),
        _string(answer, "expires_at", url),
    )


async def poll_until_done(
    session: aiohttp.ClientSession,
    base: str,
    poll_token: str,
    engines: Iterable[DetectedEngine],
    *,
    interval_s: float = POLL_INTERVAL_S,
) -> Paired | None:
    """The pairing once the operator activates it, or None when the code expired."""
    url = f"{base}/v1/host/pair/poll"
    body = {"poll_token": poll_token, "capabilities": capabilities_payload(engines)}
    while True:
        answer = await _post(session, url, body)
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "pending":
            await asyncio.sleep(interval_s)
        elif status == "expired":
            return None
        elif status == "active":
            return Paired(
                host_token=_string(answer, "host_token", url),
                provider_id=_string(answer, "provider_id", url),
                models=_activated(answer.get("model_config")),
            )
        else:
            raise SetupError(f"{url}: unexpected poll status {status!r}")


def _activated(model_config: Any) -> tuple[ActivatedModel, ...]:
    """setup.rs reads `model_config` leniently: anything it cannot read means no models."""
    if not isinstance(model_config, list):
        return ()
    models = []
    for entry in model_config:
        if not isinstance(entry, dict) or not isinstance(entry.get("model_id"), str):
            return ()
        numbers = {
            name: entry[name]
            for name in ("input_per_1m", "output_per_1m", "max_concurrent")
            if name in entry
        }
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers.values()
        ):
            return ()
        models.append(ActivatedModel(entry["model_id"], **numbers))
    return tuple(models)


def _short_secret(secret: str) -> str:
    """setup.rs short_secret's first 8 and last 4 characters of a long token, only when
    at least 24 stay hidden; else nothing of it. setup.rs writes a token of up to 16
    characters whole (and shows 12 of 17): a file we write holds no usable secret."""
    return f"{secret[:8]}…{secret[-4:]}" if len(secret) >= 36 else "…"


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are all TOML escapes too)."""
    return json.dumps(text)


def render_config(
    *,
    ws_url: str,
    key_path: Path,
    public_key_b64: str,
    engines: Iterable[DetectedEngine],
    paired: Paired,
) -> str:
    """agent.toml as setup.rs render_paired_config writes it, plus modelport's comments."""
    lines = [
        "# agent.toml, written by `modelport agent setup` (usepod-agent's format).",
        "# Re-run setup to refresh; or edit it by hand, the agent will respect it.",
        "",
        "[operator]",
        "# operator identity is owned by the dashboard; kept for usepod-agent 0.1.x files.",
        'display_name  = ""',
        'wallet        = ""',
        "",
        "[coordinator]",
        f"url             = {_toml_string(ws_url)}",
        f'# host_token     = "{_short_secret(paired.host_token)}"  (paired)',
        f'# provider_id   = "{paired.provider_id}"',
        "",
        "[identity]",
        f"key_path = {_toml_string(str(key_path))}",
        "",
        f'# public_key = "{public_key_b64}"',
        "",
    ]
    for engine in engines:
        if engine.kind in LOCAL_KINDS:
            lines += ["[[backends]]", f"kind = {_toml_string(engine.kind)}"]
            lines += [f"url  = {_toml_string(engine.url)}", ""]
        else:  # usepod-agent refuses kinds it does not know; discovery serves these
            lines += [f"# {engine.kind} at {engine.url}: served through discovery", ""]
    placeholder = "" if paired.models else "   # placeholder $0.50/M"
    lines += [
        "[pricing]",
        f"default_input_per_1m  = {PLACEHOLDER_INPUT_PER_1M:_}{placeholder}",
        f"default_output_per_1m = {PLACEHOLDER_OUTPUT_PER_1M:_}"
        + (" # placeholder $1.00/M" if placeholder else ""),
        "",
    ]
    for model in paired.models:
        lines += [
            f"[pricing.models.{_toml_string(model.model_id)}]",
            f"input_per_1m  = {model.input_per_1m}",
            f"output_per_1m = {model.output_per_1m}",
            "",
        ]
    first = paired.models[0].max_concurrent if paired.models else DEFAULT_MAX_CONCURRENT
    low, high = MAX_CONCURRENT_RANGE  # what the dashboard sent, kept loadable
    lines += ["[limits]", f"max_concurrent = {min(max(first, low), high)}"]
    return "\n".join(lines) + "\n"


def write_config(path: Path, text: str) -> Path | None:
    """Write agent.toml (checked first: it must load); a file it replaces becomes .bak."""
    parse_agent_config(text, source=str(path), allow_insecure=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        os.replace(path, backup)
    path.write_text(text, encoding="utf-8")
    return backup


async def run_setup(
    *,
    coordinator: str,
    config_path: Path,
    identity_path: Path,
    scan: bool = True,
    extra_urls: Iterable[str] = (),
    poll_interval_s: float = POLL_INTERVAL_S,
    say: Callable[[str], None] = print,
) -> SetupResult:
    """The whole flow; `say` prints to the operator. Raises SetupError (expiry included)."""
    base, ws_url = coordinator_endpoints(coordinator)
    identity = load_or_create(identity_path)
    say(f"identity: {identity.path} (public key {identity.public_key_b64})")
    engines = await detect_engines(scan=scan, extra_urls=extra_urls)
    _say_engines(engines, say)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        pair_code, poll_token, expires_at = await issue_pair_code(session, base, identity)
        say("")
        say("Pair this agent with your account:")
        say(f"  1. Visit  {pair_page(base)}")
        say(f"  2. Code:  {pair_code}")
        say(f"The code expires at {expires_at}. Waiting for pairing...")
        paired = await poll_until_done(
            session, base, poll_token, engines, interval_s=poll_interval_s
        )
    if paired is None:
        raise SetupError("the pair code expired; run `modelport agent setup` again")
    say(f"Paired as provider {paired.provider_id}")
    for model in paired.models:
        say(f"  activated: {model.model_id}")
    identity.set_provider_id(paired.provider_id)
    text = render_config(
        ws_url=ws_url,
        key_path=identity_path,
        public_key_b64=identity.public_key_b64,
        engines=engines,
        paired=paired,
    )
    backup = write_config(config_path, text)
    if backup is not None:
        say(f"The previous {config_path.name} is kept as {backup}")
    say(f"Wrote {config_path}")
    return SetupResult(paired, config_path, identity, tuple(engines), ws_url)


def _say_engines(engines: list[DetectedEngine], say: Callable[[str], None]) -> None:
    if not engines:
        say("No local engines found on the usual ports. You can pair anyway and add")
        say("[[backends]] to agent.toml later, or start Ollama, vLLM, llama-server or")
        say("LM Studio and run setup again.")
        return
    say("Found engines:")
    for engine in engines:
        say(f"  {engine.kind:<10} at {engine.url} ({len(engine.models)} models)")
