"""The README's endpoint table is the truth about the gateway's routes.

(a) Its rows are exactly the routes `build_app` registers (HEAD included: every GET row
answers HEAD unless it says "no HEAD"). (b) Its P/T/R cells for the routes whose fate
follows from data (the profiles' columns, each backend's `formats` and `relays`, whether
`count_tokens` refuses before any I/O) are what the backends of each kind do; a cell
whose letter changes with the engine's version or the request carries a footnote.

Adding a route, or flipping a profile column, without the README fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelport.backends import connect
from modelport.backends.base import Backend
from modelport.backends.managed.backend import ManagedBackend
from modelport.backends.managed.process import ManagedSpec
from modelport.backends.ollama import SINCE, OllamaBackend, formats_for
from modelport.backends.profiles import KINDS
from modelport.errors import BackendError, Unsupported
from modelport.gateway.app import build_app
from modelport.router import Router
from modelport.service import Service
from modelport.types import ChatRequest, Message, RelayedFormat, RelayFormat, WireFormat

README = Path(__file__).resolve().parents[1] / "README.md"
# The table's engine columns, and the kinds each stands for.
COLUMNS: dict[str, tuple[str, ...]] = {
    "llama": ("llamacpp", "managed"),
    "vllm": ("vllm",),
    "lms": ("lmstudio",),
    "ollama": ("ollama",),
    "lai": ("localai", "openai-compatible"),
    "oai": ("openai",),
    "or": ("openrouter",),
    "ven": ("venice",),
    "ant": ("anthropic",),
    "mock": ("mock",),
}
_ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE|HEAD) (/[^`]*)`")
_FOOTNOTE = re.compile(r"[¹²³⁴⁵⁶⁷⁸⁹⁰]+$")
CLOSED = "http://127.0.0.1:1"  # nothing listens: a backend that tries I/O fails at once


@dataclass(frozen=True)
class Row:
    routes: tuple[tuple[str, str], ...]  # (method, path with {} for each parameter)
    head: bool  # its GET answers HEAD too
    cells: dict[str, str]  # column -> cell as written (letter and footnote marks)


def _path(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def readme_table() -> list[Row]:
    text = README.read_text()
    section = text[text.index("### Endpoints\n") : text.index("### Errors\n")]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:2] == ["route", "what"]
    assert header[2:] == list(COLUMNS), "the table's columns are not the kinds' columns"
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(header), f"a row with {len(cells)} cells: {line}"
        routes = tuple((m, _path(p)) for m, p in _ROUTE.findall(cells[0]))
        assert routes, f"a row names no route: {cells[0]}"
        head = "no HEAD" not in cells[0]
        rows.append(Row(routes, head, dict(zip(header[2:], cells[2:], strict=True))))
    return rows


def served_routes() -> set[tuple[str, str]]:
    async def metrics() -> tuple[bytes, str]:
        return b"", "text/plain"

    app = build_app(Service(Router()), keys={}, metrics=metrics)
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        assert isinstance(path, str), f"a route with no path: {route}"
        served.add((route.method, _path(path)))
    return served


def test_every_route_the_app_serves_is_a_row_and_no_row_is_a_route_it_does_not() -> None:
    served = served_routes()
    documented: set[tuple[str, str]] = set()
    for row in readme_table():
        for method, path in row.routes:
            documented.add((method, path))
            if method == "GET" and row.head:
                documented.add(("HEAD", path))
    missing = sorted(served - documented)
    assert not missing, f"routes the app serves that the README's table lacks: {missing}"
    extra = sorted(documented - served)
    assert not extra, f"README rows (or their HEAD) the app does not serve: {extra}"


def test_every_kind_has_a_column() -> None:
    kinds = [kind for column in COLUMNS.values() for kind in column]
    assert sorted(kinds) == sorted(KINDS), "a kind without a column in the README's table"


# -- (b) the cells that follow from data ----------------------------------------------------

PLAIN = ChatRequest(model="m", messages=(Message.user("hi"),))
SCHEMA = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
WITH_SCHEMA = ChatRequest(model="m", messages=(Message.user("hi"),), response_format=SCHEMA)
# Relayed when the backend relays the client's format for the request, else transcoded.
CHAT_ROUTES: dict[str, WireFormat] = {
    "POST /v1/chat/completions": WireFormat.OPENAI,
    "POST /v1/messages": WireFormat.ANTHROPIC,
    "POST /v1/responses": WireFormat.RESPONSES,
    "POST /api/chat": WireFormat.OLLAMA,
    "POST /api/generate": WireFormat.OLLAMA_GENERATE,
}
COMPLETIONS = "POST /v1/completions"
COUNT_TOKENS = "POST /v1/messages/count_tokens"
# An Ollama that serves every /v1 route the backend knows of.
NEWEST_OLLAMA = ".".join(str(n) for n in max(since for _, since in SINCE))


def chat_letter(backend: Backend, format: WireFormat, request: ChatRequest) -> str:
    return "P" if backend.relays(format, request) else "T"


def completions_letter(formats: frozenset[RelayedFormat]) -> str:
    # service/completions.py: only backends relaying the format are candidates; none is a 400.
    return "P" if RelayFormat.COMPLETIONS in formats else "R"


async def count_tokens_letter(backend: Backend) -> str:
    """R when the backend refuses before any I/O (the loop passes it over); T when it counts
    (here nothing listens, so a backend that asks its engine fails, not with Unsupported)."""
    try:
        await backend.count_tokens(PLAIN)
    except Unsupported:
        return "R"
    except BackendError:
        return "T"
    return "T"


async def backend_of(kind: str, tmp_path: Path) -> Backend:
    if kind == "managed":  # connect("managed") would look for the installed engine
        spec = ManagedSpec(
            binary=tmp_path / "llama-server", model_path=tmp_path / "m.gguf", alias="m"
        )
        return ManagedBackend(spec)
    backend = connect(f"{kind}:{CLOSED}")
    if isinstance(backend, OllamaBackend):
        backend.formats = formats_for(NEWEST_OLLAMA)  # as `list_models` learns it
    return backend


async def computed(kind: str, tmp_path: Path) -> dict[str, tuple[str, set[str]]]:
    """Route -> (the letter, and the letters it takes in other cases)."""
    backend = await backend_of(kind, tmp_path)
    letters: dict[str, tuple[str, set[str]]] = {}
    try:
        for route, format in CHAT_ROUTES.items():
            plain = chat_letter(backend, format, PLAIN)
            letters[route] = (plain, {chat_letter(backend, format, WITH_SCHEMA)} - {plain})
        letters[COMPLETIONS] = (completions_letter(backend.formats), set())
        if isinstance(backend, OllamaBackend):  # a version it cannot tell, or an old one
            newest = backend.formats
            backend.formats = formats_for(None)
            for route, format in CHAT_ROUTES.items():
                letters[route][1].add(chat_letter(backend, format, PLAIN))
            letters[COMPLETIONS][1].add(completions_letter(backend.formats))
            backend.formats = newest
        if kind == "managed":  # counting would start the engine: ask the client it delegates to
            assert isinstance(backend, ManagedBackend)
            letters[COUNT_TOKENS] = (await count_tokens_letter(backend._http), set())
        else:
            letters[COUNT_TOKENS] = (await count_tokens_letter(backend), set())
    finally:
        await backend.aclose()
    for letter, others in letters.values():
        others.discard(letter)
    return letters


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_the_cells_that_follow_from_data_are_what_the_backends_do(
    kind: str, tmp_path: Path
) -> None:
    column = next(c for c, kinds in COLUMNS.items() if kind in kinds)
    rows = {f"{m} {p}": row for row in readme_table() for m, p in row.routes}
    for route, (letter, others) in (await computed(kind, tmp_path)).items():
        cell = rows[route].cells[column]
        written = _FOOTNOTE.sub("", cell)
        assert written == letter, f"{route} on {kind}: the README says {cell}, the code {letter}"
        if others:
            assert cell != written, (
                f"{route} on {kind} is {letter} here but {sorted(others)} in other cases "
                "(engine version, request): its cell needs a footnote"
            )


def test_ollama_newest_is_past_every_route_it_gained() -> None:
    """The version the table is computed at serves every /v1 route the backend knows of."""
    assert formats_for(NEWEST_OLLAMA) >= {format for format, _ in SINCE}
