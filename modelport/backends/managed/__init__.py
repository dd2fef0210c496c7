"""A llama-server child process that modelport starts, supervises and stops.

process.py spawns, health-waits and kills one child; supervisor.py is the one task that owns
each child and its state (states.py); fleet.py caps how many run at once; backend.py is the
Backend protocol on top. The rules are written down in docs/managed.md.
"""

from modelport.backends.managed.backend import (
    BUNDLED_ALIAS,
    BUNDLED_POOLING,
    ManagedBackend,
    bundled,
    bundled_spec,
    model_alias,
)
from modelport.backends.managed.fleet import Fleet
from modelport.backends.managed.process import ManagedSpec, Prerequisite, free_port
from modelport.backends.managed.states import Snapshot, State

__all__ = [
    "BUNDLED_ALIAS",
    "BUNDLED_POOLING",
    "Fleet",
    "ManagedBackend",
    "ManagedSpec",
    "Prerequisite",
    "Snapshot",
    "State",
    "bundled",
    "bundled_spec",
    "free_port",
    "model_alias",
]
