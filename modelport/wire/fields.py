"""Every request field a client dialect accepts, and its fate on each kind of engine.

One table per client dialect (`FIELDS` in `wire/openai/fields.py`, `wire/anthropic/fields.py`,
`wire/responses/fields.py`) lists each field the dialect's API reference has, and for each
target says what happens to it:

- carried: it reaches the engine as it came (or under the name the target gives it);
- mapped: the decoder models it (ChatRequest) and the target's encoder writes it;
- dropped: it is removed by name, because the answer stays a right answer without it (the
  row's note says why);
- refused: the request is refused (400, `unsupported`) naming the field and the engine.

Passthrough relays the client's body, so every field the decoder lets through reaches the
engine; the table's passthrough column says so. When a request is transcoded, the service
asks `upstream_extra` for the request's `extra` (the top-level fields the decoder did not
model) as the target gets them: that is the one place where a field's fate is decided.
A field no row names is refused: the gateway cannot tell whether another engine would honour
it, and dropping it would be silent.

Rows with a path (`messages[].name`) are nested fields: their decoder reads or refuses them
as the row says; they are in the table so that docs/fields.md, which the tests compare with
these tables, lists every field.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from modelport.wire.validate import Check, refused_by


class Target(enum.StrEnum):
    """The dialect a backend transcodes to: what its engine is asked in."""

    OPENAI = "openai"  # chat completions (every OpenAI-compatible engine)
    ANTHROPIC = "anthropic"  # Messages
    OLLAMA = "ollama"  # Ollama's native /api/chat


class Fate(enum.StrEnum):
    CARRIED = "carried"
    MAPPED = "mapped"
    DROPPED = "dropped"
    REFUSED = "refused"


@dataclass(frozen=True)
class Cell:
    """One field's fate on one target; `name` is the target's field when it differs."""

    fate: Fate
    name: str | None = None

    def render(self) -> str:
        return f"{self.fate} `{self.name}`" if self.name else str(self.fate)


CARRIED = Cell(Fate.CARRIED)
MAPPED = Cell(Fate.MAPPED)
DROPPED = Cell(Fate.DROPPED)
REFUSED = Cell(Fate.REFUSED)


def carried(name: str) -> Cell:
    return Cell(Fate.CARRIED, name)


def mapped(name: str) -> Cell:
    return Cell(Fate.MAPPED, name)


@dataclass(frozen=True)
class Row:
    """A field and its fate per target. `inert` values ask for nothing (`n: 1`,
    `logprobs: false`): they are dropped whatever the cell says (null always is).
    `example` is a value that asks for something, for the tests of refused rows."""

    path: str
    passthrough: Cell
    to: Mapping[Target, Cell]
    note: str = ""
    inert: tuple[Any, ...] | Callable[[Any], bool] = ()
    example: Any = True

    @property
    def top_level(self) -> bool:
        return "." not in self.path and "[" not in self.path

    def is_inert(self, value: Any) -> bool:
        if value is None:
            return True
        if callable(self.inert):
            return self.inert(value)
        # The type too: True == 1 would make `n: true` look like `n: 1`.
        return any(value == v and type(value) is type(v) for v in self.inert)


def row(
    path: str,
    openai: Cell,
    anthropic: Cell,
    ollama: Cell,
    note: str = "",
    *,
    passthrough: Cell = CARRIED,
    inert: tuple[Any, ...] | Callable[[Any], bool] = (),
    example: Any = True,
) -> Row:
    targets = {Target.OPENAI: openai, Target.ANTHROPIC: anthropic, Target.OLLAMA: ollama}
    return Row(path, passthrough, targets, note, inert, example)


@dataclass(frozen=True)
class FieldTable:
    """A client dialect's fields. `own` is the target that speaks the dialect itself (then
    `extra` goes as it came), None for Responses (its engines are relayed, not transcoded)."""

    title: str
    own: Target | None
    rows: tuple[Row, ...]
    # What each top-level field takes (type, range), per the dialect's API reference: the
    # decoder applies these (validate.check_values) to every request, before it is routed.
    values: Mapping[str, Check] = field(default_factory=dict)
    by_path: dict[str, Row] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        paths = [r.path for r in self.rows]
        duplicates = {p for p in paths if paths.count(p) > 1}
        if duplicates:
            raise ValueError(f"{self.title}: fields listed twice: {sorted(duplicates)}")
        unknown = set(self.values) - {r.path for r in self.rows if r.top_level}
        if unknown:
            raise ValueError(f"{self.title}: values for fields it has no row for: {unknown}")
        # A row's default example (true) for a field that takes no boolean: one it takes.
        rows = tuple(
            replace(r, example=check.sample())
            if (check := self.values.get(r.path)) is not None
            and r.example is True
            and not check.admits(True)
            else r
            for r in self.rows
        )
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "by_path", {r.path: r for r in rows})

    def top_level(self) -> Iterable[Row]:
        return (r for r in self.rows if r.top_level)

    @property
    def modelled(self) -> frozenset[str]:
        """The top-level fields the decoder models (mapped on some other dialect's engine):
        the rest of a request goes in `extra`."""
        return frozenset(
            r.path
            for r in self.top_level()
            if any(c.fate is Fate.MAPPED for t, c in r.to.items() if t is not self.own)
        )


# The temperature each target's API takes at most (OpenAI's 0 to 2, Anthropic's 0 to 1;
# Ollama states none). A request transcoded from a dialect that allows more is refused by
# name, not clamped: a clamped temperature would answer another request than the one asked.
TEMPERATURE_MAX: dict[Target, tuple[str, float]] = {
    Target.OPENAI: ("OpenAI's API", 2.0),
    Target.ANTHROPIC: ("Anthropic's API", 1.0),
}


def check_target_range(temperature: float | None, target: Target, engine: str) -> None:
    """Refuse a temperature the target's API does not take (the client's own API did)."""
    if temperature is None or target not in TEMPERATURE_MAX:
        return
    api, highest = TEMPERATURE_MAX[target]
    if temperature > highest:
        why = f"{api} takes a temperature from 0 to {highest:g}"
        refused_by("temperature", temperature, engine, why)


def upstream_extra(
    table: FieldTable, extra: Mapping[str, Any], target: Target, engine: str
) -> dict[str, Any]:
    """The request's unmodelled top-level fields as an engine of `target` gets them: carried
    (under the target's name), dropped, or the request refused naming the field and `engine`."""
    if target is table.own:
        return dict(extra)
    out: dict[str, Any] = {}
    for key, value in extra.items():
        rule = table.by_path.get(key)
        if rule is None:
            refused_by(key, value, engine, "a field this gateway does not know cannot be sent on")
        if rule.is_inert(value):
            continue
        cell = rule.to[target]
        if cell.fate is Fate.REFUSED:
            refused_by(key, value, engine, rule.note)
        if cell.fate is Fate.CARRIED:
            # A nested name's last part is the key the target's encoder places
            # (Ollama's moves option names into `options`).
            out[cell.name.rsplit(".", 1)[-1] if cell.name else key] = value
        # mapped: the decoder modelled it (what it left here is the note's); dropped: by name
    return out


# ---------------------------------------------------------------------------
# docs/fields.md is these tables rendered; the tests compare the two.

COLUMNS = (
    "field",
    "value",
    "passthrough",
    "-> OpenAI-compatible",
    "-> Anthropic",
    "-> Ollama native",
)


def render_rows(table: FieldTable) -> list[str]:
    """The markdown rows of a table (header included), as docs/fields.md holds them."""
    head = "| " + " | ".join((*COLUMNS, "note")) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in table.rows:
        value = table.values.get(r.path)
        cells = [f"`{r.path}`", value.describe() if value else "", r.passthrough.render()]
        for target in Target:
            same = target is table.own
            cells.append("(passthrough)" if same else r.to[target].render())
        cells.append(r.note.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines
