"""A py-spy look at the modelport process under streaming load (gateway.py --profile).

py-spy must be installed in the bench venv; without it there is no profile.
"""

from __future__ import annotations

import sys
from pathlib import Path

from servers import Proc, Processes

# Samples a second, and how: --nonblocking leaves the process running while it is read (a
# profile of a sequential path wants ["--gil"] instead, and a higher RATE).
RATE = 250
EXTRA = ["--nonblocking"]


def py_spy() -> str | None:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else None


def start_profile(
    procs: Processes, pid: int, seconds: float, out: Path
) -> tuple[Proc, Path] | None:
    exe = py_spy()
    if exe is None:
        return None
    argv = [exe, "record", "--pid", str(pid), "--duration", str(round(seconds))]
    argv += ["--rate", str(RATE), "--format", "raw", "--output", str(out), *EXTRA]
    return procs.start(f"py-spy-{out.stem}", argv), out


def top_functions(raw: Path, limit: int = 18) -> list[tuple[str, float, float]]:
    """py-spy raw (collapsed) stacks -> (function, self %, inclusive %)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return []
    rows = sorted(own.items(), key=lambda kv: -kv[1])[:limit]
    return [(name, 100 * n / total, 100 * inclusive[name] / total) for name, n in rows]


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = Path(path).parts
    if "modelport" in parts:
        short = "/".join(parts[parts.index("modelport") :])
    elif "site-packages" in parts:
        short = "/".join(parts[parts.index("site-packages") + 1 :])
    else:
        short = Path(path).name
    return f"{name} ({short})"
