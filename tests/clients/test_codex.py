"""Codex CLI (pinned in agents.py) one-shot through the gateway, on an engine that speaks its
dialect (the Responses API: passthrough) and on a Chat-Completions-only engine (transcoded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.helpers import (
    AFTER_TOOL,
    CODEX_ENV,
    MARKER,
    MODEL,
    THOUGHT,
    VISION_MODEL,
    WORDS,
    Served,
    Workspace,
    engine_paths,
    run_agent,
    saw_in_a_request,
    saw_tool_result,
    write_codex_config,
    write_png,
)
from tests.fakes.turns import tool_round_trip

# It answers in about a second, but never gives up while nothing answers ("Reconnecting..."):
# the timeout is what ends such a run.
TIMEOUT_S = 45

ENGINES = [
    pytest.param("openai", "/v1/responses", id="passthrough-openai"),
    pytest.param("localai", "/v1/chat/completions", id="transcoded-localai"),
]
# LocalAI's profile declares no vision, and the gateway refuses images for such a model: the
# transcoded image case runs on Venice, which speaks only Chat Completions as well.
IMAGE_ENGINES = [
    pytest.param("openai", "/v1/responses", id="passthrough-openai"),
    pytest.param("venice", "/api/v1/chat/completions", id="transcoded-venice"),
]


def codex(binary: Path, prompt: str) -> list[str]:
    # Outside a git repository `exec` needs --skip-git-repo-check.
    return [str(binary), "exec", "--strict-config", "--skip-git-repo-check", prompt]


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_codex_prints_the_engines_words(
    kind: str, engine_path: str, served: Served, workspace: Workspace, codex_bin: Path
) -> None:
    fake, url = await served(kind)
    write_codex_config(workspace.home, url, MODEL)
    run = await run_agent(codex(codex_bin, "say hi"), workspace, env=CODEX_ENV, timeout_s=TIMEOUT_S)
    assert run.returncode == 0, run.explain()
    assert WORDS in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_codex_runs_the_command_the_engine_asks_for(
    kind: str, engine_path: str, served: Served, workspace: Workspace, codex_bin: Path
) -> None:
    fake, url = await served(kind)
    write_codex_config(workspace.home, url, MODEL)
    fake.reply_for = tool_round_trip("exec_command", {"cmd": "cat marker.txt"}, text=AFTER_TOOL)
    run = await run_agent(
        codex(codex_bin, "show marker.txt"), workspace, env=CODEX_ENV, timeout_s=TIMEOUT_S
    )
    assert run.returncode == 0, run.explain()
    assert saw_tool_result(fake, MARKER), run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}


@pytest.mark.parametrize(("kind", "engine_path"), ENGINES)
async def test_codex_takes_reasoning_before_a_tool_call(
    kind: str, engine_path: str, served: Served, workspace: Workspace, codex_bin: Path
) -> None:
    fake, url = await served(kind)
    write_codex_config(workspace.home, url, MODEL)
    fake.reply_for = tool_round_trip(
        "exec_command", {"cmd": "cat marker.txt"}, text=AFTER_TOOL, thinking=THOUGHT
    )
    run = await run_agent(
        codex(codex_bin, "show marker.txt"), workspace, env=CODEX_ENV, timeout_s=TIMEOUT_S
    )
    assert run.returncode == 0, run.explain()
    assert saw_tool_result(fake, MARKER), run.explain()
    assert AFTER_TOOL in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}


@pytest.mark.parametrize(("kind", "engine_path"), IMAGE_ENGINES)
async def test_codex_sends_an_attached_image(
    kind: str, engine_path: str, served: Served, workspace: Workspace, codex_bin: Path
) -> None:
    fake, url = await served(kind, VISION_MODEL)
    write_codex_config(workspace.home, url, VISION_MODEL)
    png = write_png(workspace.work / "pic.png")
    # The prompt goes first: -i takes several values.
    argv = [*codex(codex_bin, "what is in this picture"), "-i", "pic.png"]
    run = await run_agent(argv, workspace, env=CODEX_ENV, timeout_s=TIMEOUT_S)
    assert run.returncode == 0, run.explain()
    assert saw_in_a_request(fake, png), "the image never reached the engine\n" + run.explain()
    assert WORDS in run.stdout, run.explain()
    assert engine_paths(fake) == {engine_path}
