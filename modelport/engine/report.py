"""What an install tells its caller: progress, messages, and the one error it raises."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float | None], None]


Log = Callable[[str], None]


class EngineInstallError(Exception):
    """The engine could not be installed; the message says why and what to do."""


class Reporter:
    """Fans progress and messages out to optional callbacks, so the steps need not check."""

    def __init__(self, progress: Progress | None, log: Log | None) -> None:
        self._progress = progress
        self._log = log

    def stage(self, name: str, fraction: float | None = None) -> None:
        if self._progress is not None:
            self._progress(name, fraction)

    def say(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
