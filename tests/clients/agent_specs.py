"""What tells the three agents apart in the scenario tests (test_agent_scenarios.py): how to
run one with a prompt, how to point it at a gateway, which tool call reads a file, how long a
run may take, and which engines each scenario runs on.

An engine is (kind, the path its chat requests must reach, role): "passthrough" when the
engine speaks the agent's dialect, "transcoded" when the gateway translates.

Through the hub (test_hub_scenarios.py) the engine sits behind a remote agent, and what
counts is the job: Claude Code's requests become Anthropic jobs, Codex's and opencode's
OpenAI (Chat Completions) jobs (the hub transcodes Codex's Responses). "passthrough": the
agent's engine speaks the job's format, "transcoded": the agent translates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tests.clients.helpers import (
    CODEX_ENV,
    Workspace,
    claude_code_env,
    opencode_env,
    write_codex_config,
    write_opencode_config,
)


class Engine(NamedTuple):
    kind: str
    path: str
    role: str  # "passthrough" or "transcoded"


#: how a prompt becomes an argv, given the agent's binary
Argv = Callable[[Path, str], list[str]]
#: writes the agent's config for a gateway and a model; returns the env the run gets.
#: `images`: the model takes images.
Configure = Callable[[Workspace, str, str, bool], dict[str, str]]
#: the tool call that reads the file at a path: (tool name, arguments)
ReadTool = Callable[[Path], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class AgentSpec:
    name: str  # in the test ids
    binary_fixture: str  # the conftest fixture that installs it
    argv: Argv
    configure: Configure
    read_tool: ReadTool
    read_prompt: str
    #: the flag that attaches an image to the prompt (after it: the flag takes several
    #: values); None: the agent has none, and reads the picture with its read_tool instead
    attach_flag: str | None
    timeout_s: float
    engines: tuple[Engine, ...]
    thinking_engines: tuple[Engine, ...]
    image_engines: tuple[Engine, ...]
    # through the hub: the format of the jobs its requests become; the engines
    # (passthrough, transcoded), then the engine of each other scenario
    hub_job_format: str
    hub_engines: tuple[Engine, Engine]
    hub_thinking_engine: Engine
    hub_image_engine: Engine


def _claude_code_config(_: Workspace, url: str, model: str, images: bool) -> dict[str, str]:
    return claude_code_env(url, model)


def _codex_config(workspace: Workspace, url: str, model: str, images: bool) -> dict[str, str]:
    write_codex_config(workspace.home, url, model)
    return CODEX_ENV


def _opencode_config(workspace: Workspace, url: str, model: str, images: bool) -> dict[str, str]:
    write_opencode_config(workspace.work, url, model, images=images)
    return opencode_env(url + "/npm/")


def _codex_argv(binary: Path, prompt: str) -> list[str]:
    # Outside a git repository `exec` needs --skip-git-repo-check.
    return [str(binary), "exec", "--strict-config", "--skip-git-repo-check", prompt]


_CLAUDE_CODE_ENGINES = (
    Engine("anthropic", "/v1/messages", "passthrough"),
    Engine("openai", "/v1/chat/completions", "transcoded"),
)
CLAUDE_CODE = AgentSpec(
    name="claude_code",
    binary_fixture="claude_bin",
    argv=lambda binary, prompt: [str(binary), "-p", prompt],
    configure=_claude_code_config,
    read_tool=lambda path: ("Read", {"file_path": str(path)}),
    read_prompt="read marker.txt",
    attach_flag=None,
    # It answers in about a second; a 400 makes it retry 6 times within 2 s. Eight runs at
    # most this long each keep the worst case of the tier within CI's budget.
    timeout_s=45,
    engines=_CLAUDE_CODE_ENGINES,
    # OpenAI's Chat Completions never stream reasoning: thinking is tried on a local engine
    # that does (reasoning_content) and speaks only Chat Completions.
    thinking_engines=(
        Engine("anthropic", "/v1/messages", "passthrough"),
        Engine("localai", "/v1/chat/completions", "transcoded"),
    ),
    image_engines=_CLAUDE_CODE_ENGINES,
    hub_job_format="anthropic",
    hub_engines=_CLAUDE_CODE_ENGINES,
    hub_thinking_engine=_CLAUDE_CODE_ENGINES[0],
    hub_image_engine=_CLAUDE_CODE_ENGINES[0],
)

_CODEX_ENGINES = (
    Engine("openai", "/v1/responses", "passthrough"),
    Engine("localai", "/v1/chat/completions", "transcoded"),
)
CODEX = AgentSpec(
    name="codex",
    binary_fixture="codex_bin",
    argv=_codex_argv,
    configure=_codex_config,
    read_tool=lambda path: ("exec_command", {"cmd": f"cat {path.name}"}),
    read_prompt="show marker.txt",
    attach_flag="-i",
    # It answers in about a second, but never gives up while nothing answers
    # ("Reconnecting..."): the timeout is what ends such a run.
    timeout_s=45,
    engines=_CODEX_ENGINES,
    thinking_engines=_CODEX_ENGINES,
    # LocalAI's model list says nothing of vision (the gateway lets images through to it):
    # the transcoded image case runs on Venice, whose list says so and which speaks only
    # Chat Completions as well.
    image_engines=(
        Engine("openai", "/v1/responses", "passthrough"),
        Engine("venice", "/api/v1/chat/completions", "transcoded"),
    ),
    # LocalAI speaks only Chat Completions (the job's format) and streams reasoning.
    hub_job_format="openai",
    hub_engines=(
        Engine("localai", "/v1/chat/completions", "passthrough"),
        Engine("anthropic", "/v1/messages", "transcoded"),
    ),
    hub_thinking_engine=Engine("localai", "/v1/chat/completions", "passthrough"),
    hub_image_engine=Engine("localai", "/v1/chat/completions", "passthrough"),
)

_OPENCODE_ENGINES = (
    Engine("openai", "/v1/chat/completions", "passthrough"),
    Engine("anthropic", "/v1/messages", "transcoded"),
)
OPENCODE = AgentSpec(
    name="opencode",
    binary_fixture="opencode_bin",
    argv=lambda binary, prompt: [str(binary), "run", prompt],
    configure=_opencode_config,
    read_tool=lambda path: (
        "bash",
        {"command": f"cat {path.name}", "description": f"Show {path.name}"},
    ),
    read_prompt="show marker.txt",
    attach_flag="-f",
    # 12-15 s pass before its first request on a loaded 2-core machine; a 5xx is retried for
    # about 97 s, which should still end in a failure of its own, not the timeout.
    timeout_s=120,
    engines=_OPENCODE_ENGINES,
    # OpenAI's Chat Completions never stream reasoning: thinking is tried on a local engine
    # that does (reasoning_content) and speaks only Chat Completions.
    thinking_engines=(
        Engine("localai", "/v1/chat/completions", "passthrough"),
        Engine("anthropic", "/v1/messages", "transcoded"),
    ),
    image_engines=_OPENCODE_ENGINES,
    hub_job_format="openai",
    hub_engines=_OPENCODE_ENGINES,
    hub_thinking_engine=Engine("localai", "/v1/chat/completions", "passthrough"),
    hub_image_engine=_OPENCODE_ENGINES[0],
)

AGENT_SPECS = (CLAUDE_CODE, CODEX, OPENCODE)
