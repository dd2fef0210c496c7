"""The fault matrix (issue 11, tests): every upstream fault x every client dialect x stream and
whole x passthrough and transcoded x with and without a fallback candidate.

One test per (fault, dialect, passthrough|transcoded): 16 faults x 9 dialect routes = 144
tests, each running its 4 cells (stream/whole x alone/with fallback) at once, so 576 cells.
Each cell asserts the status, that the body is in the client's dialect (its error shape, or a
broken stream's error event and never a fake success), whether fallback happened (only
before the first byte; `x-modelport-backend`), both breakers afterwards and that every
admission slot was released. The rules are in `matrix.expect`; the harness in matrix.py.

Cells that main failed before issue 11 points 1, 2 and 11 (branch wt-rel) merged carry
`Expect.point`; a point listed in PENDING_POINTS makes its cells strict xfails.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.matrix import FAULTS, ROUTES, Cell, check, expect, run_cell

WT_REL = "wt-rel"
#: issue-11 points not merged yet: their cells are strict xfails (empty since wt-rel merged)
PENDING_POINTS: frozenset[int] = frozenset()


def _params() -> list[object]:
    params: list[object] = []
    for fault in FAULTS:
        for dialect, mode in ROUTES:
            cells = _cells(fault, dialect, mode)
            points = sorted({p for c in cells if (p := expect(c).point) in PENDING_POINTS})
            marks = [
                pytest.mark.xfail(strict=True, reason=f"issue 11 point {p}: {WT_REL}")
                for p in points[:1]
            ]
            params.append(
                pytest.param(fault, dialect, mode, marks=marks, id=f"{fault}-{dialect}-{mode}")
            )
    return params


def _cells(fault: str, dialect: str, mode: str) -> list[Cell]:
    return [
        Cell(fault, dialect, mode, stream, fallback)
        for stream in (True, False)
        for fallback in (False, True)
    ]


@pytest.mark.parametrize(("fault", "dialect", "mode"), _params())
async def test_fault_cell(fault: str, dialect: str, mode: str) -> None:
    cells = _cells(fault, dialect, mode)
    seen = await asyncio.gather(*(run_cell(cell) for cell in cells))
    wrong = [
        f"{cell}: {problem}"
        for cell, s in zip(cells, seen, strict=True)
        for problem in check(cell, s)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_every_axis() -> None:
    """16 faults, every dialect route, 576 cells: the matrix the issue asks for."""
    assert len(FAULTS) == 16
    assert {d for d, _ in ROUTES} == {"openai", "responses", "anthropic", "ollama", "completions"}
    assert len(ROUTES) * len(FAULTS) * 4 == 576
