"""The installer of the pinned agents: a missing npm is an error that says so, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.agents import CODEX, AgentInstallError, ensure_installed


def test_an_agent_that_cannot_be_installed_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing installed there
    monkeypatch.setenv("PATH", str(tmp_path))  # and no npm to install with
    assert CODEX.installed_version() is None
    with pytest.raises(AgentInstallError, match=r"@openai/codex@0\.171\.0: npm is not on PATH"):
        ensure_installed(CODEX)


def test_an_installed_agent_is_found_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # npm would be needed to install: it is not
    package = CODEX.prefix / "node_modules" / "@openai" / "codex"
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"name": "@openai/codex", "version": "0.171.0"}')
    binary = CODEX.executable
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert ensure_installed(CODEX) == (binary, False)
    (package / "package.json").write_text('{"version": "0.170.0"}')  # another version: not it
    with pytest.raises(AgentInstallError):
        ensure_installed(CODEX)
