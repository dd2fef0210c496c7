"""What `modelport.toml` may say: typed msgspec structs, one per table, with defaults.

Types and key names live here and only here: `shape` reads them (through
`msgspec.inspect`) to check a file before conversion, and `check` holds the rules types
cannot express.
"""

from __future__ import annotations

import msgspec

FILE_NAME = "modelport.toml"
LEDGER_FILE = "usage.sqlite3"
LEDGER_OFF = "off"
AGENTS_FILE = "hub-agents.json"
HUB_POLICIES = ("local-first", "price")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The gateway's HTTP side: where it listens, who may call it, how much it accepts."""

    host: str = "127.0.0.1"
    port: int = 7878
    # Environment variables holding accepted keys; none set means no auth (loopback only).
    api_keys_env: tuple[str, ...] = ("MODELPORT_API_KEY",)
    max_body_mb: float = 32
    request_timeout_s: float = 600
    # How long one backend may take to the first byte of its answer before the next
    # candidate is tried (Envoy's per_try_timeout); a backend may set its own.
    first_byte_timeout_s: float = 120
    # How long SIGTERM lets streams in flight finish; 0 cuts them at once.
    shutdown_grace_s: float = 10
    # "" = the user data dir, "off" = no ledger, else a path (relative to the config file).
    ledger: str = ""
    log_level: str = "info"
    # With no backend configured and none discovered, run the bundled model.
    embedded: bool = True
    # How many managed llama-servers may run at once (each holds a model in memory).
    max_managed: int = 1
    # How long a request waits for a managed engine that is starting (being installed,
    # built or loading) before it gets 503 with Retry-After and what the start is doing.
    # Below first_byte_timeout_s, which would otherwise end the wait as the engine's fault.
    start_wait_s: float = 60
    # Browser pages that may call the gateway ("https://app.example.com"; "*": any). A
    # request with any other Origin gets 403; requests without one (SDKs, curl) are not affected.
    allowed_origins: tuple[str, ...] = ()
    # Host headers answered besides the bound address, localhost, 127.0.0.1 and [::1] at
    # the bound port ("name" for any port, "name:port", "*": any): DNS rebinding defence.
    allowed_hosts: tuple[str, ...] = ()
    # Reading a client's request (nginx's client_header_timeout, client_body_timeout,
    # keepalive_timeout): a slow or silent client is cut off, not held. The answer is
    # never timed by these; request_timeout_s bounds that.
    header_timeout_s: float = 60
    body_timeout_s: float = 60
    keepalive_timeout_s: float = 75
    # Client connections held at once; beyond it new ones wait in the listen backlog.
    max_connections: int = 1024
    # What the gateway holds of an engine's answer: one stream frame, one whole body.
    max_frame_mb: float = 16
    max_upstream_body_mb: float = 64

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_frame_bytes(self) -> int:
        return int(self.max_frame_mb * 1024 * 1024)

    @property
    def max_upstream_body_bytes(self) -> int:
        return int(self.max_upstream_body_mb * 1024 * 1024)


class DiscoveryConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Engines found on this machine, served alongside the configured ones."""

    enabled: bool = True
    refresh_s: float = 30
    host: str = "127.0.0.1"
    ports: tuple[int, ...] = ()  # probed besides the default ports


class CapabilitiesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a model can do, as the operator says: each key given beats what the engine
    reports (vLLM's model list says nothing of images, for one); a key left out keeps it."""

    tools: bool | None = None
    vision: bool | None = None
    thinking: bool | None = None
    embeddings: bool | None = None
    json_schema: bool | None = None

    def overrides(self) -> dict[str, bool]:
        """The keys given, as `Capabilities.with_overrides` takes them."""
        given = {name: getattr(self, name) for name in self.__struct_fields__}
        return {name: value for name, value in given.items() if value is not None}


class BackendConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One engine to serve; clients reach its models as "label/model" or by model name.

    Which of these fields a kind takes is its row's `fields` in modelport.backends.profiles.
    """

    kind: str
    name: str | None = None
    url: str | None = None  # None: the kind's default URL
    api_key_env: str | None = None
    models: tuple[str, ...] = ()  # allow-list; empty serves every model the engine lists
    max_concurrent: int = 8
    max_queue: int = 64
    queue_timeout_s: float = 30
    first_byte_timeout_s: float | None = None  # None: server.first_byte_timeout_s
    priority: int = 0
    # Over what the engine reports, for every model it serves, then per model by name.
    capabilities: CapabilitiesConfig = msgspec.field(default_factory=CapabilitiesConfig)
    model_capabilities: dict[str, CapabilitiesConfig] = msgspec.field(default_factory=dict)
    # kind = "managed" only: a llama-server modelport runs itself.
    model: str | None = None  # GGUF path; None: the bundled Gemma 3 270M
    alias: str | None = None  # the model name clients use; default: bundled name or file stem
    llama_server: str | None = None  # binary; None: the installed one (`modelport engine install`)
    ctx_size: int = 4096
    threads: int | None = None
    parallel: int = 2
    chat_template: str | None = None
    idle_unload_s: float = 0  # stop the engine after this long without requests; 0: never
    embeddings: bool = False  # start llama-server with --embeddings (and serve /v1/embeddings)
    args: tuple[str, ...] = ()  # more llama-server flags, passed as they are

    @property
    def label(self) -> str:
        """The name clients and logs use: `name`, or the kind when there is none."""
        return self.name if self.name is not None else self.kind

    @property
    def spec(self) -> str:
        """What `modelport.backends.connect` takes: "KIND" or "KIND:URL"."""
        return f"{self.kind}:{self.url}" if self.url else self.kind


class EnrollmentCode(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A code an agent may join with once (or, `reusable`, until it expires)."""

    code: str
    reusable: bool = False
    expires_at: str | None = None  # RFC 3339; None: never


class HubConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`modelport serve --hub`: agents on other machines join at /provider/connect."""

    enabled: bool = False
    # Base64 Ed25519 public keys of agents that may join (besides those `modelport hub
    # add-agent` wrote to `agents_file`).
    agent_keys: tuple[str, ...] = ()
    enrollment_codes: tuple[EnrollmentCode, ...] = ()
    # Keys added and revoked by `modelport hub add-agent/revoke`; "" = the user data dir.
    agents_file: str = ""
    # "local-first": this machine's engines before agents; "price": the cheapest first.
    policy: str = "local-first"
    max_frame_kb: int = 1024  # one WebSocket message from an agent
    max_frames_per_s: int = 2000  # per agent, averaged over a second; a job's own not counted
    auth_timeout_s: float = 10  # an unauthenticated connection is closed after this
    drain_timeout_s: float = 30  # a planned restart lets in-flight jobs run this long
    heartbeat_misses: int = 2  # an agent silent for this many heartbeats is not ready


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The whole file. Every part has a default: no file means discovery alone."""

    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    discovery: DiscoveryConfig = msgspec.field(default_factory=DiscoveryConfig)
    backends: tuple[BackendConfig, ...] = ()
    aliases: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    hub: HubConfig = msgspec.field(default_factory=HubConfig)
