"""The pinned coding agents of the real-agent tier, installed with npm into the user cache.

    python -m tests.clients.agents          # install the missing ones; exit 1 if one fails

Each agent lives in `<user cache>/modelport/npm/<name>-<version>` (`~/.cache/modelport/npm/...`
on Linux): a second run finds it there and does nothing. An agent that cannot be installed is
an error, never a skip: the tier exists to show that these agents work through the gateway.
Versions are pinned because each release changes what the agent sends (see
docs/captures/clients/README.md, where these versions were captured).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

INSTALL_TIMEOUT_S = 600


class AgentInstallError(RuntimeError):
    """npm is missing, or `npm install` failed, or left no working binary."""


@dataclass(frozen=True)
class Agent:
    name: str  # the cache folder's stem
    package: str  # npm package
    version: str
    binary: str  # in node_modules/.bin

    @property
    def prefix(self) -> Path:
        root = Path(platformdirs.user_cache_dir("modelport")) / "npm"
        return root / f"{self.name}-{self.version}"

    @property
    def executable(self) -> Path:
        return self.prefix / "node_modules" / ".bin" / self.binary

    def installed_version(self) -> str | None:
        """The version npm put in the prefix, or None when the agent is not (fully) there."""
        manifest = self.prefix / "node_modules" / self.package / "package.json"
        try:
            version = json.loads(manifest.read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not os.access(self.executable, os.X_OK):  # the .bin link resolves to a binary
            return None
        return version if isinstance(version, str) else None


CLAUDE_CODE = Agent("claude-code", "@anthropic-ai/claude-code", "2.1.332", "claude")
CODEX = Agent("codex", "@openai/codex", "0.171.0", "codex")
OPENCODE = Agent("opencode-ai", "opencode-ai", "1.18.33", "opencode")
AGENTS = (CLAUDE_CODE, CODEX, OPENCODE)


def ensure_installed(agent: Agent) -> tuple[Path, bool]:
    """The agent's executable, installing it first when missing; and whether it was installed
    now. Raises AgentInstallError with npm's own words when that fails."""
    if agent.installed_version() == agent.version:
        return agent.executable, False
    npm = shutil.which("npm")
    if npm is None:
        raise AgentInstallError(
            f"{agent.package}@{agent.version}: npm is not on PATH (install node and npm)"
        )
    agent.prefix.mkdir(parents=True, exist_ok=True)
    log = agent.prefix.with_name(agent.prefix.name + ".log")
    command = [
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(agent.prefix),
        f"{agent.package}@{agent.version}",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AgentInstallError(f"{' '.join(command)}: no answer in {exc.timeout:g}s") from None
    log.write_text(done.stdout + done.stderr)
    found = agent.installed_version()
    if done.returncode != 0 or found != agent.version:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise AgentInstallError(
            f"{' '.join(command)} exited {done.returncode}, left version {found}:\n{tail}"
        )
    return agent.executable, True


def main() -> int:
    failed = 0
    for agent in AGENTS:
        started = time.monotonic()
        try:
            path, fresh = ensure_installed(agent)
        except AgentInstallError as exc:
            print(f"{agent.name} {agent.version}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        how = f"installed in {time.monotonic() - started:.0f}s" if fresh else "cached"
        print(f"{agent.name} {agent.version}: {how} ({path})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
