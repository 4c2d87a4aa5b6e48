"""Turn validation error records into the one-line problems a user reads.

A problem is ``SOURCE: KEY: what is wrong``: SOURCE is the config file (or the
environment variable an override came from), KEY a dotted path with array
items counted from 0 (``accounts[0].calendars[1]``). The wording comes from
the models' own declarations (type, ``msgspec.Meta`` bounds,
:class:`~.models.Unit`, :class:`~.models.Hint`), so a new field gets a
sensible message for free. The records come from :mod:`.validate`.

Invariants: a problem never contains a newline, never a secret's value (fields
marked :class:`~.models.Secret`) and never a database password; unknown keys
get a "did you mean" hint from :mod:`difflib` when a known key is close.
Pure functions; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from reconciler.config.models import CalendarConfig, ConfigFile, Hint, Secret, Unit
from reconciler.config.validate import UNKNOWN, Error, meta_value, type_hints

__all__ = ["Loc", "Problem", "describe", "format_key", "from_errors", "unknown_key"]

Loc = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the config, located by ``loc`` and reported by ``source``."""

    loc: Loc
    message: str
    source: str | None = None  # None: the config file
    unknown: bool = False  # an unknown key: says nothing about the known keys' values

    def line(self, default_source: str) -> str:
        """The one-line text shown to the user."""
        key = format_key(self.loc)
        where = f"{self.source or default_source}: {key}: " if key else (
            f"{self.source or default_source}: ")
        return " ".join(f"{where}{self.message}".split("\n"))


def format_key(loc: Loc) -> str:
    """``("accounts", 0, "calendars", 1)`` -> ``accounts[0].calendars[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def type_name(value: Any) -> str:
    """Name a value's TOML type, for messages that must not show the value."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return "a date/time"
    return f"a {type(value).__name__} value"


def describe(value: Any) -> str:
    """Show a bad value the way the user wrote it in TOML (short, one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, int):
        text = repr(value)
        return text if len(text) <= 30 else f"{text[:12]}... ({len(text)} digits)"
    if isinstance(value, float):
        return repr(value)
    return type_name(value)


# --------------------------------------------------------------------------- model lookup


def _dataclass_in(annotation: Any) -> type | None:
    """The model (dataclass) an annotation holds (through Annotated/Union/tuple)."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _dataclass_in(arg)
        if found is not None:
            return found
    return None


def _metadata(annotation: Any) -> list[Any]:
    found: list[Any] = []
    if typing.get_origin(annotation) is typing.Annotated:
        found.extend(annotation.__metadata__)
    for arg in typing.get_args(annotation):
        if not isinstance(arg, str | int | float):
            found.extend(_metadata(arg))
    return found


def _base(annotation: Any) -> Any:
    """The scalar type (int, float, bool, str, Path or a Literal) behind an annotation."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return annotation
    if origin is typing.Annotated:
        return _base(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _base(arg)
    return annotation


@dataclasses.dataclass(frozen=True)
class _Field:
    owner: type
    name: str
    annotation: Any  # with its Annotated metadata

    @property
    def metadata(self) -> list[Any]:
        return _metadata(self.annotation)

    def has(self, kind: type) -> Any:
        return next((m for m in self.metadata if isinstance(m, kind)), None)


@functools.cache
def _model_fields(cls: type) -> dict[str, Any]:
    hints = type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _fields(cls: type) -> dict[str, Any]:
    """A model's field annotations in declaration order (``{}`` for a non-model)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return {}
    return _model_fields(cls)


def _walk(root: type, loc: Loc) -> tuple[type, _Field | None, bool]:
    """Follow ``loc`` from ``root``: the table it ends in, its field, and whether
    the last step was an array item (``calendars[1]``) rather than a key."""
    cls: type = root
    field: _Field | None = None
    item = False
    for part in loc:
        if isinstance(part, int):
            item = True
            continue
        item = False
        if field is not None:
            inner = _dataclass_in(field.annotation)
            if inner is not None:
                cls = inner
        annotation = _fields(cls).get(part)
        if annotation is None:
            return cls, None, False
        field = _Field(cls, part, annotation)
    return cls, field, item


def rank(root: type, loc: Loc) -> tuple[tuple[int, int], ...]:
    """Sort key: a table's unknown keys first, then its fields in declaration order."""
    out: list[tuple[int, int]] = []
    cls: type | None = root
    for part in loc:
        if isinstance(part, int):
            out.append((1, part))
            continue
        names = list(_fields(cls)) if cls is not None else []
        if part in names:
            out.append((1, names.index(part)))
            assert cls is not None
            cls = _dataclass_in(_fields(cls)[part])
        else:
            out.append((0, 0))
            cls = None
    return tuple(out)


# --------------------------------------------------------------------------- messages


def _num(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _number(low: Any, high: Any, exclusive: bool) -> str:
    if exclusive:
        return (f"above {_num(low)} and at most {_num(high)}" if high is not None
                else f"above {_num(low)}")
    return f"from {_num(low)} to {_num(high)}" if high is not None else f">= {_num(low)}"


def _one_of(values: Sequence[Any]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _item_type(annotation: Any) -> Any:
    """The entry type of an array field (``tuple[X, ...]``), else ``None``."""
    base = _base(annotation)
    return typing.get_args(base)[0] if typing.get_origin(base) is tuple else None


def what(field: _Field) -> str:
    """What a field must be, in words: "an integer number of seconds from 1 to 604800"."""
    base = _base(field.annotation)
    if base is bool:
        return "true or false"
    if typing.get_origin(base) is Literal:
        return _one_of(typing.get_args(base))
    item = _item_type(field.annotation)
    if item is not None:
        choices = _base(item)
        if typing.get_origin(choices) is Literal:
            return f"an array of {_one_of(typing.get_args(choices))}"
        return "an array"
    if base in (str, Path):
        return "a string"
    above = meta_value(field.metadata, "gt")
    low, exclusive = (above, True) if above is not None else (
        meta_value(field.metadata, "ge"), False)
    high = meta_value(field.metadata, "le")
    unit = field.has(Unit)
    noun = "an integer" if base is int else "a number"
    if unit is not None and unit.name == "seconds":
        noun = "an integer number of seconds" if base is int else "a number of seconds"
    elif unit is not None:
        noun += f" ({unit.name})"
    text = noun if low is None else f"{noun} {_number(low, high, exclusive)}"
    hint = field.has(Hint)
    return f"{text} ({hint.text})" if hint is not None else text


def unknown_key(key: str, known: Sequence[str], here: str | None) -> str:
    """The message for an unknown ``key`` in the table ``here`` (``None``: top level)."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    for section, annotation in _fields(ConfigFile).items():
        cls = _dataclass_in(annotation)
        if section in ("accounts", here) or cls is None:
            continue
        if key in _fields(cls):
            return f"unknown key (did you mean {section}.{key}?)"
    return "unknown key"


_TABLE_SHAPES = {
    "accounts": "an array of tables ([[accounts]])",
    "calendars": "an array of calendar ids",
}
_CALENDAR_ITEM = 'a calendar id string or a table {id = "...", interval = N}'


def message(root: type, loc: Loc, kind: str, value: Any, ctx: Mapping[str, Any] | None) -> str:
    """One error record's ``kind`` at ``loc`` (relative to ``root``), in the user's words."""
    cls, field, item = _walk(root, loc)
    if kind == "missing":
        return "is required"
    if kind == UNKNOWN:
        here = loc[-2] if len(loc) >= 2 and isinstance(loc[-2], str) else None
        return unknown_key(str(loc[-1]), list(_fields(cls)), here)
    if kind == "value_error" and ctx is not None:
        return str(ctx.get("error", "is not valid"))
    secret = field is not None and field.has(Secret) is not None
    got = type_name(value) if secret else describe(value)
    if field is None:
        return f"is not valid, got {got}"
    if item:
        inner = _dataclass_in(field.annotation)
        if inner is CalendarConfig:
            return f"must be {_CALENDAR_ITEM}, got {got}"
        if inner is not None:
            return f"must be a table, got {got}"
        choices = _base(_item_type(field.annotation))
        if typing.get_origin(choices) is Literal:
            return f"must be {_one_of(typing.get_args(choices))}, got {got}"
        return f"is not valid, got {got}"
    if kind == "string_too_long" and ctx is not None:
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "too_long" and ctx is not None:
        return f"has more than {ctx.get('max_length')} entries"
    if kind == "too_short" and ctx is not None:
        shortest = int(ctx.get("min_length", 1))
        return ("must not be empty (leave the key out instead)" if shortest == 1
                else f"must have at least {shortest} entries")
    if field.name in _TABLE_SHAPES:
        return f"must be {_TABLE_SHAPES[field.name]}, got {got}"
    if _dataclass_in(field.annotation) is not None:
        return f"must be a table ([{field.name}]), got {got}"
    return f"must be {what(field)}, got {got}"


def from_errors(
    root: type, errors: Iterable[Error], prefix: Loc = (), source: str | None = None
) -> list[Problem]:
    """Every error record (from :func:`reconciler.config.validate.check` on
    ``root``) as a :class:`Problem`, unknown keys first, then in the order the
    model declares its fields."""
    problems = []
    for err in errors:
        loc = tuple(err.loc)
        text = message(root, loc, err.type, err.input, err.ctx)
        unknown = err.type == UNKNOWN
        problems.append((rank(root, loc), Problem(prefix + loc, text, source, unknown)))
    problems.sort(key=lambda pair: pair[0])
    return [problem for _, problem in problems]
