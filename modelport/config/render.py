"""`modelport config check`: plain text of what `serve` would do with a config.

Never prints a key's value: only whether its variable is set, and URLs with any
password replaced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from modelport.backends.profiles import EMBEDDINGS_FLAGS
from modelport.config.check import hub_warnings
from modelport.config.derive import (
    agents_file_path,
    api_keys,
    discovery_ports,
    is_cloud,
    kind_of,
    ledger_path,
    requires_keys,
    split_keys,
)
from modelport.config.schema import BackendConfig, Config, HubConfig, ServerConfig
from modelport.scrub import redact_url

__all__ = ["render_check"]


def render_check(config: Config, path: Path | None, env: Mapping[str, str] = os.environ) -> str:
    lines = [
        f"config: {path}" if path is not None else "no config file: defaults",
        f"listen: http://{_host_port(config.server.host, config.server.port)}",
        *_auth_lines(config, env),
        *_server_lines(config),
        *_discovery_lines(config),
        *_backend_lines(config.backends, env),
        *_alias_lines(config.aliases),
        _embedded_line(config),
        *_hub_lines(config),
    ]
    return "\n".join(lines) + "\n"


def _embedded_line(config: Config) -> str:
    if not config.server.embedded:
        return "embedded engine: off"
    if config.backends:
        return "embedded engine: not used (backends are configured)"
    return "embedded engine: served as gemma-3-270m when discovery finds no engine"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _auth_lines(config: Config, env: Mapping[str, str]) -> list[str]:
    names = config.server.api_keys_env
    if not names:
        lines = ["auth: off (server.api_keys_env is empty)"]
    else:
        state = "on" if api_keys(config, env) else "off (no key variable is set)"
        lines = [f"auth: {state}"]
        lines += [f"  {name}: {_key_state(env.get(name, ''))}" for name in names]
    refusal = requires_keys(config, env)
    if refusal:
        lines.append(f"  serve would not start: {refusal}")
    return lines


def _key_state(value: str) -> str:
    count = len(split_keys(value))
    if count == 0:
        return "not set"
    return "set" if count == 1 else f"set ({count} keys)"


def _server_lines(config: Config) -> list[str]:
    server = config.server
    ledger = ledger_path(config)
    lines = [
        f"body cap: {server.max_body_mb:g} MB",
        f"request timeout: {server.request_timeout_s:g} s",
        *_first_byte_line(server),
        f"client timeouts: header {server.header_timeout_s:g} s, body "
        f"{server.body_timeout_s:g} s, keep-alive idle {server.keepalive_timeout_s:g} s",
        f"connections: at most {server.max_connections}",
        f"engine answers: {server.max_frame_mb:g} MB a frame, "
        f"{server.max_upstream_body_mb:g} MB a whole body",
        f"shutdown grace: {server.shutdown_grace_s:g} s",
        f"ledger: {ledger if ledger is not None else 'off'}",
        f"log level: {server.log_level}",
    ]
    # Shown when set; unset, only the gateway's own origin and names are answered.
    if server.allowed_origins:
        lines.append(f"browser origins: {', '.join(server.allowed_origins)}")
    if server.allowed_hosts:
        lines.append(
            "hosts answered: bound address, localhost, 127.0.0.1, [::1], "
            + ", ".join(server.allowed_hosts)
        )
    return lines


def _first_byte_line(server: ServerConfig) -> list[str]:
    """The per-attempt first-byte limit, when the file moves it from its default."""
    if server.first_byte_timeout_s == ServerConfig().first_byte_timeout_s:
        return []
    return [f"first-byte timeout: {server.first_byte_timeout_s:g} s per attempt"]


def _discovery_lines(config: Config) -> list[str]:
    discovery = config.discovery
    if not discovery.enabled:
        return ["discovery: off"]
    ports = ", ".join(str(port) for port in discovery_ports(config))
    return [f"discovery: on, host {discovery.host}, ports {ports}, every {discovery.refresh_s:g} s"]


def _own_first_byte(backend: BackendConfig) -> str:
    limit = backend.first_byte_timeout_s
    return "" if limit is None else f", first_byte_timeout_s {limit:g}"


def _backend_lines(backends: tuple[BackendConfig, ...], env: Mapping[str, str]) -> list[str]:
    if not backends:
        return ["backends: none configured"]
    lines = [f"backends: {len(backends)}"]
    for backend in backends:
        lines += [
            f"  {backend.label} ({backend.kind}{', cloud' if is_cloud(backend) else ''})",
            f"    url: {_shown_url(backend, env)}",
            f"    key: {_backend_key_state(backend, env)}",
            f"    models: {', '.join(backend.models) if backend.models else 'all it lists'}",
            f"    limits: max_concurrent {backend.max_concurrent}, max_queue {backend.max_queue}, "
            f"queue_timeout_s {backend.queue_timeout_s:g}{_own_first_byte(backend)}",
            f"    priority: {backend.priority}",
            *_capability_lines(backend),
        ]
        if kind_of(backend).runs_engine:
            lines += _engine_lines(backend)
    return lines


def _capability_lines(backend: BackendConfig) -> list[str]:
    """What config says the models can do (nothing when it says nothing: then all is as
    the engine reports, which `modelport models` and GET /v1/models show)."""
    given = backend.capabilities.overrides()
    if not given and not backend.model_capabilities:
        return []
    lines = [f"    capabilities: {_said(given) if given else 'as the engine reports'}"]
    for name, capabilities in backend.model_capabilities.items():
        lines.append(f"      {name}: {_said(capabilities.overrides())}")
    return lines


def _said(given: Mapping[str, bool]) -> str:
    if not given:
        return "as the engine reports"
    words = ", ".join(f"{name} {'yes' if value else 'no'}" for name, value in given.items())
    return f"{words} (config), the rest as the engine reports"


def _engine_lines(backend: BackendConfig) -> list[str]:
    model = backend.model or "the bundled Gemma 3 270M"
    alias = backend.alias or ("gemma-3-270m" if backend.model is None else "the file's stem")
    idle = f"after {backend.idle_unload_s:g} s idle" if backend.idle_unload_s else "never"
    return [
        f"    engine: {backend.llama_server or 'the installed llama-server'}",
        f"    model file: {model}, served as {alias}",
        f"    ctx_size {backend.ctx_size} over {backend.parallel} slots "
        f"({backend.ctx_size // backend.parallel} per request); unload: {idle}",
        f"    embeddings: {_embeddings_state(backend)}",
    ]


def _embeddings_state(backend: BackendConfig) -> str:
    if backend.embeddings:
        return "on (llama-server --embeddings)"
    if any(arg in EMBEDDINGS_FLAGS for arg in backend.args):
        return "on (--embeddings among args)"
    return "off (embeddings = true starts it with --embeddings)"


def _shown_url(backend: BackendConfig, env: Mapping[str, str]) -> str:
    if backend.url is not None:
        return redact_url(backend.url)
    kind = kind_of(backend)
    moved = env.get(kind.url_env) if kind.url_env else None
    if moved:
        return f"default, from {kind.url_env} ({redact_url(moved)})"
    if kind.default_url is None:
        return kind.no_url
    return f"default ({kind.default_url})"


def _backend_key_state(backend: BackendConfig, env: Mapping[str, str]) -> str:
    if backend.api_key_env is not None:
        state = "set" if env.get(backend.api_key_env) else "not set"
        if state == "not set" and is_cloud(backend):
            state += ": its requests will fail with AuthError"
        return f"{backend.api_key_env} ({state})"
    fallback = kind_of(backend).api_key_env
    if fallback and env.get(fallback):
        return f"none configured; the backend reads {fallback} (set)"
    return "none"


def _alias_lines(aliases: Mapping[str, tuple[str, ...]]) -> list[str]:
    if not aliases:
        return ["aliases: none"]
    return ["aliases:", *(f"  {name} -> {', '.join(to)}" for name, to in aliases.items())]


def _hub_lines(config: Config) -> list[str]:
    """The [hub] table: who may join, how agents are routed, the limits. Never a code."""
    hub = config.hub
    if hub == HubConfig():  # no [hub] table: nothing to say (serve --hub still turns it on)
        return []
    where = f"ws://{_host_port(config.server.host, config.server.port)}/provider/connect"
    state = f"on, agents join at {where}" if hub.enabled else "off unless serve --hub"
    path = agents_file_path(config)
    lines = [
        f"hub: {state}",
        f"  policy: {hub.policy} ({_POLICY_WORDS.get(hub.policy, '?')})",
        f"  agent keys in config: {len(hub.agent_keys)}",
        f"  enrollment codes: {_codes(hub) or 'none'}",
        f"  agents file: {path} ({'exists' if path.exists() else 'not written yet'})",
        f"  limits: {hub.max_frame_kb} KB a frame, {hub.max_frames_per_s} frames/s an agent, "
        f"auth within {hub.auth_timeout_s:g} s, drain {hub.drain_timeout_s:g} s, not ready "
        f"after {hub.heartbeat_misses} missed heartbeats",
    ]
    return lines + [f"  warning: {warning}" for warning in hub_warnings(config)]


_POLICY_WORDS = {
    "local-first": "this machine's engines before agents",
    "price": "the cheapest advertised price first",
}


def _codes(hub: HubConfig) -> str:
    parts = []
    for entry in hub.enrollment_codes:
        use = "reusable" if entry.reusable else "single-use"
        until = f" until {entry.expires_at}" if entry.expires_at else ", no expiry"
        parts.append(f"{use}{until}")
    return "; ".join(parts)
