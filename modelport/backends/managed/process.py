"""One llama-server child: how to run it, spawn it, watch its health and kill it.

Nothing here keeps state between calls: the supervisor (supervisor.py) owns every
`EngineProcess` it spawns and decides when each one starts and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.backends.profiles import EMBEDDINGS_FLAGS
from modelport.errors import Unreachable

log = logging.getLogger("modelport.managed")
engine_log = logging.getLogger("modelport.managed.llama-server")

STOP_GRACE_S = 5.0
HEALTH_POLL_S = 0.1


@dataclass(frozen=True)
class ManagedSpec:
    """How to run one model: the binary, the GGUF file and llama-server's knobs."""

    binary: Path
    model_path: Path
    alias: str
    ctx_size: int = 4096
    threads: int | None = None
    parallel: int = 2
    chat_template: str | None = None
    idle_unload_s: float = 0.0  # 0: never unload
    # --embeddings: llama-server serves /v1/embeddings (and, in current builds, chat too).
    embeddings: bool = False
    # --pooling, for a model whose GGUF names none (the bundled Gemma 3 270M: without it
    # llama-server answers "Pooling type 'none' is not OAI compatible").
    pooling: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def serves_embeddings(self) -> bool:
        """Whether the child answers /v1/embeddings: asked for here or among `args`."""
        return self.embeddings or any(arg in EMBEDDINGS_FLAGS for arg in self.args)

    def command(self, port: int) -> list[str]:
        cmd = [
            str(self.binary),
            "--model", str(self.model_path),
            "--alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ctx-size", str(self.ctx_size),
            "--parallel", str(self.parallel),
        ]  # fmt: skip
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.chat_template:
            cmd += ["--chat-template", self.chat_template]
        if self.embeddings:
            cmd.append("--embeddings")
            if self.pooling:
                cmd += ["--pooling", self.pooling]
        return [*cmd, *self.args]


class Prerequisite(Protocol):
    """What must be in place before the first spawn, made by someone else: the embedded
    engine's install (llama-server built, the model fetched), which one task owns."""

    async def wait(self, note: Callable[[str], None]) -> None:
        """Return once it is in place; `note` hears what is happening meanwhile ("building
        llama-server, 40%"). Raises `BackendError` saying why it cannot be made."""
        ...


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: its own process group, and SIGKILL when we die (Linux)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class EngineProcess:
    """A running llama-server: its pid, its exit, and a kill that takes its whole group."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._stderr = asyncio.create_task(self._pipe_stderr())

    @classmethod
    async def spawn(cls, spec: ManagedSpec, port: int, backend_id: str) -> EngineProcess:
        """Start the child; `Unreachable` when there is no binary or it cannot be executed."""
        if not spec.binary.exists():
            raise Unreachable(f"no llama-server at {spec.binary}", backend_id=backend_id)
        command = spec.command(port)
        log.info("starting %s", " ".join(command))
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=_die_with_parent,
                env={**os.environ, **spec.env},
            )
        except OSError as exc:
            raise Unreachable(f"cannot run {spec.binary}: {exc}", backend_id=backend_id) from exc
        return cls(process)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.returncode is None

    async def wait(self) -> int:
        """The exit code, once the child has exited."""
        return await self._process.wait()

    async def _pipe_stderr(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None
        async for line in stderr:
            engine_log.debug("%s", line.decode("utf-8", "replace").rstrip())

    async def kill(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after the grace period."""
        try:
            if self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(self._process.wait(), STOP_GRACE_S)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self._process.pid, signal.SIGKILL)
                    await self._process.wait()
        finally:
            self._stderr.cancel()


async def wait_healthy(http: OpenAICompatBackend, note: Callable[[str], None]) -> None:
    """Poll `/health` until the engine answers ready; `note` hears why it is not yet.

    Runs inside the supervisor's starter task, which is cancelled when the child exits or a
    stop is asked: the poll dies with it, so no health poll outlives its run.
    """
    while True:
        health = await http.health()
        if health.ready:
            return
        # Not answering yet: the process is still coming up. Its connect error would only
        # show our internal address to whoever is told what the start is doing.
        note((health.last_error or "loading") if health.alive else "starting llama-server")
        await asyncio.sleep(HEALTH_POLL_S)
