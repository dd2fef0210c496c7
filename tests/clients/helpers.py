"""What the agent tests share: what the fake engine says, running an agent, pointing each
agent at a gateway, and what the engine saw.

Running a real coding agent one-shot: isolated, bounded in time, cleaned up after. Every
run gets its own $HOME and working directory (agents read config, sessions and caches from
both) and an `env -i`-style environment: only PATH, HOME, TERM, LANG and what the test
passes. The agent starts in a new session, so its process group holds everything it spawns
(Codex's shell commands, opencode's helpers); when the run ends, however it ends, the group
is killed, and then any process still carrying this run's $HOME (one that left the group
with setsid) is killed too. Output goes to files, so a run killed at its timeout still
shows what it had printed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes import FakeEngine
from tests.fakes.turns import tool_results

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"

#: the `served` fixture: `fake, gateway_url, model = await served(kind, model=MODEL)`: the
#: engine, where the agent is pointed, and the name the engine serves `model` under
Served = Callable[..., Awaitable[tuple[FakeEngine, str, str]]]

# What the fake engine says, and the file the tool round trips read.
MODEL = "some-model"  # unknown to every agent: Codex changes its requests for models it knows
# The fakes read capabilities from the name: this one takes images, and the gateway refuses
# images for a model that does not.
VISION_MODEL = "some-vision-model"
WORDS = "Pelicans compile harmonicas at dawn."
AFTER_TOOL = "The marker came back: pelicans approve."
THOUGHT = "The marker file should tell me."
MARKER = "orchid-5521"  # only in marker.txt: the engine sees it only if the agent ran the tool


@dataclass
class AgentRun:
    argv: list[str]
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float
    #: processes of this run found alive after its group was killed (killed in turn)
    strays: list[int] = field(default_factory=list)

    def explain(self) -> str:
        """What a failed assertion should show: how it ended and what the agent printed."""
        ended = "timed out" if self.returncode is None else f"exit {self.returncode}"
        return (
            f"{self.argv[0].rsplit('/', 1)[-1]} {ended} after {self.seconds:.1f}s\n"
            f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"
        )


@dataclass(frozen=True)
class Workspace:
    """A run's fresh $HOME and working directory."""

    home: Path
    work: Path

    @classmethod
    def under(cls, root: Path) -> Workspace:
        home, work = root / "home", root / "work"
        home.mkdir(parents=True)
        work.mkdir(parents=True)
        return cls(home, work)


def base_env(home: Path) -> dict[str, str]:
    """What any agent needs from the machine: a PATH with node on it, and nothing else."""
    path = SYSTEM_PATH
    node = shutil.which("node")
    if node is not None and os.path.dirname(node) not in SYSTEM_PATH.split(":"):
        path = os.path.dirname(node) + ":" + path  # Codex's launcher is a node script
    return {"PATH": path, "HOME": str(home), "TERM": "dumb", "LANG": "C.UTF-8"}


async def run_agent(
    argv: Sequence[str],
    workspace: Workspace,
    *,
    env: Mapping[str, str],
    timeout_s: float,
) -> AgentRun:
    """Run `argv` in `workspace.work` with `base_env` + `env`; never outlives `timeout_s`."""
    out_path, err_path = workspace.home.parent / "stdout", workspace.home.parent / "stderr"
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=workspace.work,
            env={**base_env(workspace.home), **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        returncode: int | None = None
        try:
            returncode = await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            # Also after a normal exit: children left in the group (a shell the agent
            # started) must not outlive the test.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.returncode is None:
                await process.wait()
            await _until_gone(lambda: _live_pids(group=process.pid))
    seconds = time.monotonic() - started
    strays = kill_strays(workspace.home)
    await _until_gone(lambda: _live_pids(home=workspace.home))
    return AgentRun(
        list(argv),
        returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        seconds,
        strays,
    )


def kill_strays(home: Path) -> list[int]:
    """Kill every live process whose environment has HOME=`home`; their pids."""
    killed: list[int] = []
    for pid in _live_pids(home=home):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def _live_pids(*, group: int | None = None, home: Path | None = None) -> list[int]:
    """Processes (zombies excepted: they are dead, only not yet reaped) in process group
    `group`, or with HOME=`home` in their environment."""
    marker = f"HOME={home}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            if state == "Z":
                continue
            in_group = group is not None and int(pgrp) == group
            if in_group or (home is not None and marker in _environ(entry)):
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return found


def _environ(proc_entry: Path) -> list[bytes]:
    return proc_entry.joinpath("environ").read_bytes().split(b"\0")


async def _until_gone(pids: Callable[[], list[int]], within_s: float = 5.0) -> None:
    """Wait until SIGKILL has taken effect (delivery is asynchronous); nothing to await on
    for processes that are not our children, so poll."""
    for _ in range(int(within_s / 0.02)):
        if not pids():
            return
        await asyncio.sleep(0.02)


def write_png(path: Path) -> str:
    """A 2x2 red PNG at `path` (made here: no binary file in the repository); its base64."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return base64.b64encode(png).decode()


# -- pointing each agent at a gateway (the settings in docs/captures/clients/README.md) ------


def claude_code_env(gateway_url: str, model: str) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": gateway_url,
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        # A 5xx is retried 10 times over ~3 minutes by default; once is enough here.
        "CLAUDE_CODE_MAX_RETRIES": "1",
    }


def write_codex_config(home: Path, gateway_url: str, model: str) -> None:
    config = home / ".codex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'model = "{model}"\n'
        'model_provider = "modelport"\n'
        "check_for_update_on_startup = false\n"
        "[model_providers.modelport]\n"
        'name = "modelport"\n'
        f'base_url = "{gateway_url}/v1"\n'
        'env_key = "MODELPORT_KEY"\n'
        'wire_api = "responses"\n'
        # A 5xx is otherwise retried 30 times; a failed test should fail fast.
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
        "[analytics]\n"
        "enabled = false\n"
        "[feedback]\n"
        "enabled = false\n"
    )


CODEX_ENV = {"MODELPORT_KEY": "test-key"}


def write_opencode_config(
    work: Path, gateway_url: str, model: str, *, images: bool = False
) -> None:
    """opencode.json in $PWD. `images`: declare image input, without which opencode replaces
    an attached image by an error text for the model."""
    entry: dict[str, object] = {"name": model, "tool_call": True}
    if images:
        entry["attachment"] = True
        entry["modalities"] = {"input": ["text", "image"], "output": ["text"]}
    config = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "model": f"modelport/{model}",
        "provider": {
            "modelport": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "modelport",
                "options": {"baseURL": f"{gateway_url}/v1", "apiKey": "{env:MODELPORT_KEY}"},
                "models": {model: entry},
            }
        },
    }
    (work / "opencode.json").write_text(json.dumps(config, indent=2))


def opencode_env(registry_url: str) -> dict[str, str]:
    return {
        "MODELPORT_KEY": "test-key",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_CLAUDE_CODE": "1",
        # opencode looks up a few npm packages at start; a 404 from here keeps the run off
        # the network and it goes on without them (docs/captures/clients/README.md).
        "npm_config_registry": registry_url,
    }


# -- what the engine saw ----------------------------------------------------------------------

CHAT_PATHS = ("/chat/completions", "/v1/messages", "/v1/responses", "/api/chat")


def chat_bodies(fake: FakeEngine) -> list[object]:
    """The chat requests the engine got (any wire), in order."""
    return [r.json for r in fake.requests if r.path.endswith(CHAT_PATHS)]


def engine_paths(fake: FakeEngine) -> set[str]:
    """The paths the engine's chat requests came to: its own dialect's path when the gateway
    passes the agent's requests through, another when it transcodes them."""
    return {r.path for r in fake.requests if r.path.endswith(CHAT_PATHS)}


def saw_in_a_request(fake: FakeEngine, text: str) -> bool:
    """Whether `text` is anywhere in a chat request's raw body (an image's base64, say)."""
    return any(text.encode() in r.body for r in fake.requests if r.path.endswith(CHAT_PATHS))


def saw_tool_result(fake: FakeEngine, text: str) -> bool:
    """Whether a tool result containing `text` reached the engine."""
    return any(text in result for body in chat_bodies(fake) for result in tool_results(body))
