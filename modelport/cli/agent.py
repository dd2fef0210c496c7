"""`modelport agent ...`: usepod-agent's commands (src/main.rs), run by modelport's agent.

`run` (the default), `setup`, `enroll`, `validate`, and modelport's `status`. The global
options are main.rs's: `--config/-c PATH`, `--log-level`, `--allow-insecure`, given before
the command or after it (clap's `global = true`). Heavy imports happen inside commands.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli import fail

if TYPE_CHECKING:
    from modelport.agent.config import AgentConfig
    from modelport.agent.identity import Identity

log = logging.getLogger("modelport.agent")

agent_app = typer.Typer(
    help="Lend this machine's engines to a hub (usepod-agent's protocol, config and identity).",
    invoke_without_command=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="PATH",
        help="agent.toml. Default: the user config dir's usepod-agent/agent.toml, "
        "then ./agent.toml.",
    ),
]
LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        help="error, warn, info, debug or trace. Default: \\[observability] log_level, else info.",
    ),
]
InsecureOption = Annotated[
    bool, typer.Option("--allow-insecure", help="Allow a ws:// (unencrypted) coordinator URL.")
]

# usepod-agent's levels (tracing's) and what Python's logging calls them.
LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}


@dataclass
class AgentOptions:
    config: Path | None = None
    log_level: str | None = None
    allow_insecure: bool = False

    def merged(
        self, config: Path | None, log_level: str | None, allow_insecure: bool
    ) -> AgentOptions:
        """The options given after the command over those given before it."""
        return AgentOptions(
            config=config or self.config,
            log_level=log_level or self.log_level,
            allow_insecure=allow_insecure or self.allow_insecure,
        )


def log_level_of(text: str) -> int:
    """A level from usepod-agent's `--log-level` (a tracing EnvFilter: `debug`, or
    `provider_agent=debug,info`): the last bare level named, else INFO, as EnvFilter
    falls back."""
    level = logging.INFO
    for part in text.split(","):
        word = part.strip().lower()
        if word in LEVELS:
            level = LEVELS[word]
    return level


def _setup_logging(level_text: str | None) -> None:
    logging.basicConfig(
        level=log_level_of(level_text or "info"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _options(
    ctx: typer.Context, config: Path | None, level: str | None, insecure: bool
) -> AgentOptions:
    parent = ctx.obj if isinstance(ctx.obj, AgentOptions) else AgentOptions()
    options = parent.merged(config, level, insecure)
    _setup_logging(options.log_level)
    return options


def _load(options: AgentOptions) -> AgentConfig:
    from modelport.agent.config import AgentConfigError, load_agent_config

    try:
        config = load_agent_config(options.config, allow_insecure=options.allow_insecure)
    except AgentConfigError as exc:
        raise fail(str(exc)) from None
    if options.log_level is None:  # the file's level, when the command line names none
        logging.getLogger().setLevel(log_level_of(config.observability.log_level))
    return config


def _identity(config: AgentConfig) -> Identity:
    from modelport.agent.identity import IdentityError, expand_key_path, load_or_create

    try:
        return load_or_create(expand_key_path(config.key_path))
    except IdentityError as exc:
        raise fail(str(exc)) from None


@agent_app.callback()
def agent(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    allow_insecure: InsecureOption = False,
) -> None:
    """Lend this machine's engines to a hub. Without a command: `run`."""
    ctx.obj = AgentOptions(config, log_level, allow_insecure)
    if ctx.invoked_subcommand is None:
        _run(_options(ctx, None, None, False))


@agent_app.command()
def run(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    allow_insecure: InsecureOption = False,
) -> None:
    """Connect to the coordinator and serve jobs (the default)."""
    _run(_options(ctx, config, log_level, allow_insecure))


def _run(options: AgentOptions) -> None:
    config = _load(options)
    identity = _identity(config)
    from modelport.agent.runner import run_agent

    log.info(
        "starting agent: public key %s, coordinator %s",
        identity.public_key_b64,
        config.coordinator_url,
    )

    async def serve(stop: asyncio.Event) -> None:
        await run_agent(config, identity, allow_insecure=options.allow_insecure, stop=stop)

    asyncio.run(until_signalled(serve))


async def until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(stop)`; SIGTERM or SIGINT sets `stop` (a graceful end: in-flight jobs
    finish), and a second one cancels it outright."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(serve(stop))

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: stopping now", signal.Signals(signum).name)
            task.cancel()
            return
        log.info("%s: stopping (again to stop at once)", signal.Signals(signum).name)
        stop.set()

    handled = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            handled.append(signum)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises instead
            pass
    try:
        await task
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


@agent_app.command()
def setup(
    ctx: typer.Context,
    coordinator: Annotated[
        str | None,
        typer.Option(
            "--coordinator",
            metavar="URL",
            help="The coordinator's base URL (default https://api.usepod.ai); a ws(s):// "
            "URL is taken too.",
        ),
    ] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option("--engine", metavar="URL", help="Also look for an engine here (repeatable)."),
    ] = None,
    scan: Annotated[
        bool, typer.Option("--scan/--no-scan", help="Look for engines on the usual ports.")
    ] = True,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    allow_insecure: InsecureOption = False,
) -> None:
    """Pair this agent with an account through a one-time code, then write agent.toml."""
    from modelport.agent.config import user_config_path
    from modelport.agent.identity import IdentityError
    from modelport.agent.setup import DEFAULT_SETUP_COORDINATOR, SetupError, run_setup

    options = _options(ctx, config, log_level, allow_insecure)
    config_path = options.config or user_config_path()
    try:
        result = asyncio.run(
            run_setup(
                coordinator=coordinator or DEFAULT_SETUP_COORDINATOR,
                config_path=config_path,
                identity_path=_setup_key_path(config_path),
                scan=scan,
                extra_urls=engine or (),
                say=typer.echo,
            )
        )
    except (SetupError, IdentityError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("setup interrupted", 130) from None
    flags = "" if options.config is None else f" --config {config_path}"
    if result.ws_url.startswith("ws://"):
        flags += " --allow-insecure"
    typer.echo("")
    typer.echo("Run the agent:")
    typer.echo(f"  modelport agent{flags} run")


def _setup_key_path(config_path: Path) -> Path:
    """The key agent.toml at `config_path` already names, else usepod-agent's default, so
    setting up again keeps the key an operator chose."""
    from modelport.agent.config import DEFAULT_KEY_PATH
    from modelport.agent.identity import expand_key_path

    key_path = DEFAULT_KEY_PATH
    try:
        identity = tomllib.loads(config_path.read_text(encoding="utf-8")).get("identity")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        identity = None
    if isinstance(identity, dict) and isinstance(identity.get("key_path"), str):
        key_path = identity["key_path"]
    return expand_key_path(key_path).absolute()


@agent_app.command()
def enroll(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    allow_insecure: InsecureOption = False,
) -> None:
    """Print the identity's public key, provider id and key file (made on first use)."""
    loaded = _load(_options(ctx, config, log_level, allow_insecure))
    identity = _identity(loaded)
    typer.echo(f"public_key: {identity.public_key_b64}")
    typer.echo(f"provider_id: {identity.provider_id or '<not yet enrolled>'}")
    typer.echo(f"key_path: {identity.path}")
    if loaded.enrollment_code:
        # Said, never shown: a (reusable) code admits any key to the hub, and this output
        # gets pasted into tickets to hand the public key over. usepod-agent prints it.
        typer.echo("enrollment_code: set in agent.toml (not shown)")


@agent_app.command()
def validate(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    allow_insecure: InsecureOption = False,
) -> None:
    """Check agent.toml without touching the network; print what it says."""
    loaded = _load(_options(ctx, config, log_level, allow_insecure))
    typer.echo(f"ok: parsed {len(loaded.backends)} backend(s)")
    typer.echo(summary(loaded))


def summary(config: AgentConfig) -> str:
    from modelport.agent.engines import api_key_of
    from modelport.agent.identity import expand_key_path

    pricing, limits, mp = config.pricing, config.limits, config.modelport
    lines = [
        f"config:       {config.source}",
        f"coordinator:  {config.coordinator_url}",
        f"identity:     {expand_key_path(config.key_path)}",
        f"backends:     {'none' if not config.backends else ''}".rstrip(),
    ]
    for backend in config.backends:
        parts = [backend.url] if backend.url else []
        if backend.api_key_env:
            unset = "" if api_key_of(backend, os.environ) else " (not set here)"
            parts.append(f"key from ${backend.api_key_env}{unset}")
        if backend.markup is not None:
            parts.append(f"markup {backend.markup:g}")
        if backend.models is not None:
            parts.append(f"models {', '.join(backend.models) or 'none'}")
        lines.append(f"  {backend.kind:<17} {', '.join(parts)}")
    lines += [
        f"pricing:      {pricing.default_input_per_1m} in / {pricing.default_output_per_1m} out"
        f" (USDC micro-units per 1M tokens); {len(pricing.models)} model price(s)",
        f"limits:       max_concurrent {limits.max_concurrent}, max_tokens_per_minute "
        f"{limits.max_tokens_per_minute if limits.max_tokens_per_minute is not None else 'none'}",
        f"metrics:      http://{config.observability.prometheus_addr}/metrics",
        f"discovery:    {'on' if mp.discover else 'off'}, every {mp.rediscover_s:g} s",
    ]
    return "\n".join(lines)


@agent_app.command()
def status(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    allow_insecure: InsecureOption = False,
) -> None:
    """What the agent has served: jobs, tokens and earnings per model (its ledger)."""
    # It never dials the coordinator, so a ws:// one (a team hub on a LAN, which `run`
    # takes with --allow-insecure) is shown, not refused.
    options = _options(ctx, config, log_level, allow_insecure)
    loaded = _load(AgentOptions(options.config, options.log_level, allow_insecure=True))
    from modelport.agent.status import render_status

    typer.echo(render_status(loaded))
