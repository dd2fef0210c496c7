"""What an install tells its caller: progress, messages, and the one error it raises."""

from __future__ import annotations

import threading
from collections.abc import Callable

Progress = Callable[[str, float | None], None]


Log = Callable[[str], None]

# What each stage is doing, said to someone waiting for it (a request's 503, /ready).
_STAGE_WORDS = {
    "check model": "checking the model",
    "download model": "downloading the model",
    "assemble model": "assembling the model",
    "download llama.cpp source": "downloading the llama.cpp source",
    "configure llama.cpp": "configuring the llama-server build",
    "build llama-server": "building llama-server",
    "check llama-server": "checking the new llama-server",
}


def describe_stage(stage: str, fraction: float | None) -> str:
    """A progress report as a phrase: "building llama-server, 40%"."""
    words = _STAGE_WORDS.get(stage, stage)
    return words if fraction is None else f"{words}, {fraction:.0%}"


class EngineInstallError(Exception):
    """The engine could not be installed; the message says why and what to do."""


class Reporter:
    """Fans progress and messages out to optional callbacks, so the steps need not check."""

    def __init__(
        self,
        progress: Progress | None,
        log: Log | None,
        cancel: threading.Event | None = None,
    ) -> None:
        self._progress = progress
        self._log = log
        # Set by whoever started the install to end it (a `serve` stopped mid-build): the
        # running command is killed with its process group, and the install raises.
        self.cancel = cancel or threading.Event()

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise EngineInstallError("the engine install was cancelled")

    def stage(self, name: str, fraction: float | None = None) -> None:
        if self._progress is not None:
            self._progress(name, fraction)

    def say(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
