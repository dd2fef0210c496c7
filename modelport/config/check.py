"""The rules a well-typed config must still keep: ranges, names, URLs, labels, aliases,
and which fields each kind takes (its row in the kind table).

A gateway that quietly ignores `max_concurent = 2` runs without the limit its operator
asked for, so every problem is an error that names its key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from modelport.backends.profiles import EMBEDDINGS_FLAGS, KINDS
from modelport.config.derive import (
    agent_key_problem,
    agents_file_path,
    is_cloud,
    kind_of,
    parse_rfc3339,
    split_url,
)
from modelport.config.errors import ConfigError, join_key
from modelport.config.schema import (
    HUB_POLICIES,
    LOG_LEVELS,
    BackendConfig,
    Config,
    DiscoveryConfig,
    HubConfig,
    ServerConfig,
)
from modelport.scrub import redact_url

__all__ = ["check_config", "check_host", "check_port", "hub_warnings"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_config(config: Config, given: Sequence[Collection[str]] | None = None) -> None:
    """Raise ConfigError for the first rule `config` breaks.

    `given` holds the keys each backend's table had in the file; without it (a Config
    built in code) a field counts as given when it differs from its default.
    """
    _check_server(config.server)
    _check_discovery(config.discovery)
    for index, backend in enumerate(config.backends):
        fields = given[index] if given is not None else _non_default_fields(backend)
        _check_backend(f"backends[{index}]", backend, fields)
    _check_labels(config.backends)
    _check_aliases(config.aliases, {backend.label for backend in config.backends})
    _check_hub(config.hub)


def _check_server(server: ServerConfig) -> None:
    check_host("server.host", server.host)
    check_port("server.port", server.port)
    for index, name in enumerate(server.api_keys_env):
        _check_env_name(f"server.api_keys_env[{index}]", name)
    _check_positive("server.max_body_mb", server.max_body_mb)
    _check_positive("server.request_timeout_s", server.request_timeout_s)
    _check_positive("server.first_byte_timeout_s", server.first_byte_timeout_s)
    _check_finite("server.shutdown_grace_s", server.shutdown_grace_s, low=0)
    _check_finite("server.start_wait_s", server.start_wait_s, low=0)
    _check_at_least("server.max_managed", server.max_managed, 1)
    for index, origin in enumerate(server.allowed_origins):
        _check_origin(f"server.allowed_origins[{index}]", origin)
    for index, host in enumerate(server.allowed_hosts):
        _check_allowed_host(f"server.allowed_hosts[{index}]", host)
    for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
        _check_positive(f"server.{name}", getattr(server, name))
    _check_at_least("server.max_connections", server.max_connections, 1)
    _check_positive("server.max_frame_mb", server.max_frame_mb)
    _check_positive("server.max_upstream_body_mb", server.max_upstream_body_mb)
    if server.log_level not in LOG_LEVELS:
        raise ConfigError(
            f"expected one of {', '.join(LOG_LEVELS)}; got {server.log_level!r}",
            key="server.log_level",
        )
    if server.ledger and not server.ledger.strip():
        raise ConfigError('expected a path, "off" or ""; got blanks', key="server.ledger")


def _check_discovery(discovery: DiscoveryConfig) -> None:
    _check_positive("discovery.refresh_s", discovery.refresh_s)
    check_host("discovery.host", discovery.host)
    for index, port in enumerate(discovery.ports):
        check_port(f"discovery.ports[{index}]", port)


def _check_backend(key: str, backend: BackendConfig, given: Collection[str]) -> None:
    if backend.kind not in KINDS:
        raise ConfigError(
            f"unknown kind {backend.kind!r}; known: {', '.join(KINDS)}", key=f"{key}.kind"
        )
    if backend.name is not None:
        _check_label(f"{key}.name", backend.name)
    if backend.url is not None:
        _check_url(f"{key}.url", backend.url)
    if backend.api_key_env is not None:
        _check_env_name(f"{key}.api_key_env", backend.api_key_env)
    elif is_cloud(backend):
        raise ConfigError(
            f"required for the cloud kind {backend.kind!r} "
            f'(e.g. api_key_env = "{kind_of(backend).api_key_env}")',
            key=f"{key}.api_key_env",
        )
    for index, model in enumerate(backend.models):
        if not model.strip():
            raise ConfigError(
                "expected a model name, got an empty string", key=f"{key}.models[{index}]"
            )
    _check_model_capabilities(key, backend)
    _check_at_least(f"{key}.max_concurrent", backend.max_concurrent, 1)
    _check_at_least(f"{key}.max_queue", backend.max_queue, 0)
    _check_positive(f"{key}.queue_timeout_s", backend.queue_timeout_s)
    if backend.first_byte_timeout_s is not None:
        _check_positive(f"{key}.first_byte_timeout_s", backend.first_byte_timeout_s)
    _check_kind_fields(key, backend, given)
    if kind_of(backend).runs_engine:
        _check_engine(key, backend)


def _check_model_capabilities(key: str, backend: BackendConfig) -> None:
    """A per-model table must name a model this backend may serve, or it says nothing."""
    for name in backend.model_capabilities:
        where = join_key(f"{key}.model_capabilities", name)
        if not name.strip():
            raise ConfigError("expected a model name, got an empty string", key=where)
        if backend.models and name not in backend.models:
            raise ConfigError(
                f"{name!r} is not in this backend's models, so it is never served; "
                "add it there or remove this table",
                key=where,
            )


def _check_kind_fields(key: str, backend: BackendConfig, given: Collection[str]) -> None:
    """A field the kind does not take would be silently ignored: refuse it, saying why."""
    kind = kind_of(backend)
    for name in given:
        if name not in kind.fields:
            raise ConfigError(kind.refused.get(name) or _only_for(name), key=f"{key}.{name}")


def _only_for(field: str) -> str:
    owners = [f'kind = "{kind.name}"' for kind in KINDS.values() if field in kind.fields]
    return f"only for {' or '.join(owners)}"


def _non_default_fields(backend: BackendConfig) -> list[str]:
    default = BackendConfig(kind=backend.kind)
    return [
        name
        for name in backend.__struct_fields__
        if getattr(backend, name) != getattr(default, name)
    ]


def _check_engine(key: str, backend: BackendConfig) -> None:
    _check_at_least(f"{key}.ctx_size", backend.ctx_size, 256)
    started_with = backend.embeddings or any(arg in EMBEDDINGS_FLAGS for arg in backend.args)
    if backend.capabilities.embeddings and not started_with:
        # Saying so would not start llama-server with them: every request would fail.
        raise ConfigError(
            "a managed engine serves embeddings only when started with them: "
            "set embeddings = true instead",
            key=f"{key}.capabilities.embeddings",
        )
    _check_at_least(f"{key}.parallel", backend.parallel, 1)
    if backend.threads is not None:
        _check_at_least(f"{key}.threads", backend.threads, 1)
    if backend.idle_unload_s < 0:
        raise ConfigError("must be 0 (never) or more", key=f"{key}.idle_unload_s")


def _check_label(key: str, label: str) -> None:
    """Labels are the "label/" prefix of model names, so a slash or a blank would split wrong."""
    if not label:
        raise ConfigError("must not be empty", key=key)
    if "/" in label:
        raise ConfigError(f"{label!r} may not contain '/' (it separates label and model)", key=key)
    if any(char.isspace() for char in label):
        raise ConfigError(f"{label!r} may not contain spaces", key=key)


def _check_labels(backends: Iterable[BackendConfig]) -> None:
    seen: dict[str, int] = {}
    for index, backend in enumerate(backends):
        label = backend.label
        if label in seen:
            field = "name" if backend.name is not None else "kind"
            raise ConfigError(
                f"duplicate backend label {label!r} (also backends[{seen[label]}]); "
                "give each backend its own name",
                key=f"backends[{index}].{field}",
            )
        seen[label] = index


def _check_aliases(aliases: Mapping[str, tuple[str, ...]], labels: set[str]) -> None:
    """An alias maps a model name to candidates tried in order; it never chains.

    It may not start with a backend's "label/": that would hide the explicit route.
    """
    for name, targets in aliases.items():
        key = join_key("aliases", name)
        if not name.strip():
            raise ConfigError("an alias name must not be empty", key=key)
        prefix = name.partition("/")[0]
        if "/" in name and prefix in labels:
            raise ConfigError(
                f"shadows the explicit route to backend {prefix!r}; pick another name", key=key
            )
        if not targets:
            raise ConfigError("expected at least one model", key=key)
        for index, target in enumerate(targets):
            if not target.strip():
                raise ConfigError(
                    "expected a model name, got an empty string", key=f"{key}[{index}]"
                )
            if target in aliases:
                raise ConfigError(
                    f"{target!r} is itself an alias; aliases do not chain", key=f"{key}[{index}]"
                )


def _check_hub(hub: HubConfig) -> None:
    seen: dict[str, int] = {}
    for index, key in enumerate(hub.agent_keys):
        where = f"hub.agent_keys[{index}]"
        problem = agent_key_problem(key)
        if problem is not None:
            raise ConfigError(problem, key=where)
        if key in seen:
            raise ConfigError(f"duplicate key (also hub.agent_keys[{seen[key]}])", key=where)
        seen[key] = index
    _check_enrollment_codes(hub)
    if hub.policy not in HUB_POLICIES:
        raise ConfigError(
            f"expected one of {', '.join(HUB_POLICIES)}; got {hub.policy!r}", key="hub.policy"
        )
    if hub.agents_file and not hub.agents_file.strip():
        raise ConfigError('expected a path or ""; got blanks', key="hub.agents_file")
    _check_at_least("hub.max_frame_kb", hub.max_frame_kb, 1)
    _check_at_least("hub.max_frames_per_s", hub.max_frames_per_s, 1)
    _check_positive("hub.auth_timeout_s", hub.auth_timeout_s)
    _check_positive("hub.drain_timeout_s", hub.drain_timeout_s)
    _check_at_least("hub.heartbeat_misses", hub.heartbeat_misses, 1)


def _check_enrollment_codes(hub: HubConfig) -> None:
    seen: dict[str, int] = {}
    for index, entry in enumerate(hub.enrollment_codes):
        where = f"hub.enrollment_codes[{index}]"
        # The code is never echoed: it admits whoever holds it.
        if not entry.code.strip():
            raise ConfigError("expected a code, got an empty string", key=f"{where}.code")
        if entry.code in seen:
            raise ConfigError(
                f"the same code as hub.enrollment_codes[{seen[entry.code]}]; codes must differ",
                key=f"{where}.code",
            )
        seen[entry.code] = index
        if entry.expires_at is not None:
            try:
                parse_rfc3339(entry.expires_at)
            except ValueError as exc:
                raise ConfigError(str(exc), key=f"{where}.expires_at") from None


def hub_warnings(config: Config) -> list[str]:
    """What is legal but likely a mistake in [hub]: said by `config check` and `serve`."""
    hub = config.hub
    if not hub.enabled or hub.agent_keys or hub.enrollment_codes:
        return []
    if agents_file_path(config).exists():
        return []
    return [
        "hub is enabled but no agent may join: no agent_keys, no enrollment_codes and no "
        "agents file yet (`modelport hub add-agent PUBKEY` writes one)"
    ]


def check_host(key: str, host: str) -> None:
    if not host or any(char.isspace() for char in host):
        raise ConfigError(f"expected a host name or address, got {host!r}", key=key)


def _check_origin(key: str, origin: str) -> None:
    """An origin as browsers send it: scheme://host[:port], nothing after; or "*"."""
    if origin == "*":
        return
    parts = split_url(origin)
    if (
        parts is None
        or not parts.scheme
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ConfigError(
            f'expected an origin like "https://app.example.com" or "*", got {redact_url(origin)!r}',
            key=key,
        )


def _check_allowed_host(key: str, host: str) -> None:
    """A Host header value: name, name:port, [v6]:port; or "*"."""
    if host == "*":
        return
    if not host or host.startswith(":") or any(c.isspace() or c in "/@?#" for c in host):
        raise ConfigError(f'expected a host, host:port or "*", got {host!r}', key=key)


def check_port(key: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(f"expected a port in 1..65535, got {port}", key=key)


def _check_env_name(key: str, name: str) -> None:
    # The value is not echoed: a key pasted here by mistake must not reach a log.
    if not _ENV_NAME.fullmatch(name):
        raise ConfigError(
            "expected the name of an environment variable (letters, digits, _), not a key itself",
            key=key,
        )


def _check_url(key: str, url: str) -> None:
    parts = split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http(s) URL with a host, got {redact_url(url)!r}", key=key)


def _check_positive(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"expected a number > 0, got {value}", key=key)


def _check_finite(key: str, value: float, *, low: float) -> None:
    if not (math.isfinite(value) and value >= low):
        raise ConfigError(f"expected a number >= {low:g}, got {value}", key=key)


def _check_at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"expected an integer >= {low}, got {value}", key=key)
