"""Check a TOML table against a config model and report *every* problem.

Why this module exists: msgspec (which checks each key's type and bounds from
the models' ``Annotated[..., msgspec.Meta(...)]`` declarations) stops at the
first error, and the CLI reports every problem of a config file at once. So
this walker goes through a model's fields itself: unknown keys, missing keys,
nested tables, arrays and their items, unions; each leaf value is checked by
:func:`msgspec.convert` against its own annotated type, then by the field's
:class:`~reconciler.config.models.Check` functions. Errors are plain records
(:class:`Error`: ``loc``, ``type``, ``input``, ``ctx``) that
:mod:`reconciler.config.problems` words for the user.

Only a table without errors is built, as the model's own frozen dataclass, from
the converted (possibly normalised) values. Pure functions; no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import msgspec

from reconciler.config.models import Before, Check

__all__ = ["Error", "check", "meta_value", "type_hints"]

Loc = tuple[str | int, ...]

# Error kinds (``Error.type``) that problems.message words specially; any other
# kind (a wrong type, out of bounds, not finite, ...) is worded from the field's
# declaration.
MISSING = "missing"
UNKNOWN = "extra_forbidden"
VALUE_ERROR = "value_error"  # ctx {"error": the check's message}
STRING_TOO_LONG = "string_too_long"  # ctx {"max_length": n}
TOO_LONG = "too_long"  # an array; ctx {"max_length": n}
TOO_SHORT = "too_short"  # an array; ctx {"min_length": n}


class Error(NamedTuple):
    """One thing wrong at ``loc`` (relative to the checked table)."""

    loc: Loc
    type: str
    input: Any
    ctx: dict[str, Any] | None = None


class _Bad:
    """The result of a value with errors (``None`` is a valid value)."""


_BAD: Any = _Bad()


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """A model's field types with their ``Annotated`` metadata, by field name."""
    return typing.get_type_hints(cls, include_extras=True)


def _split(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[X, a, b]`` -> ``(X, (a, b))`` (nested Annotated is already flat)."""
    if typing.get_origin(tp) is Annotated:
        return typing.get_args(tp)[0], tuple(tp.__metadata__)
    return tp, ()


def meta_value(metadata: Iterable[Any], name: str) -> Any:
    """The last ``msgspec.Meta`` constraint ``name`` in ``metadata``, else ``None``."""
    found = None
    for meta in metadata:
        if isinstance(meta, msgspec.Meta) and getattr(meta, name) is not None:
            found = getattr(meta, name)
    return found


def _dec_hook(tp: Any, value: Any) -> Any:
    if tp is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"expected a string for {tp!r}")  # msgspec makes it a ValidationError


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _hooks(kind: type[Before] | type[Check], metadata: tuple[Any, ...], value: Any, loc: Loc,
           errors: list[Error]) -> Any:
    """Run a field's ``kind`` hooks in order; a ``ValueError`` is the field's problem."""
    for meta in metadata:
        if isinstance(meta, kind):
            try:
                value = meta.fn(value)
            except ValueError as exc:
                errors.append(Error(loc, VALUE_ERROR, value, {"error": str(exc)}))
                return _BAD
    return value


def _value(tp: Any, value: Any, loc: Loc, errors: list[Error]) -> Any:
    base, metadata = _split(tp)
    value = _hooks(Before, metadata, value, loc, errors)
    if value is _BAD:
        return _BAD
    origin = typing.get_origin(base)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(base)
        if value is None and type(None) in arms:
            return None
        arms = tuple(arm for arm in arms if arm is not type(None))
        # the branch by the value's shape: a table goes to the model, anything else
        # to the first other branch
        shaped = [arm for arm in arms if _is_model(_split(arm)[0]) == isinstance(value, dict)]
        result = _value((shaped or list(arms))[0], value, loc, errors)
    elif _is_model(base):
        if not isinstance(value, dict):
            errors.append(Error(loc, "dataclass_type", value, {"class_name": base.__name__}))
            return _BAD
        result = _table(base, value, loc, errors)
    elif origin is tuple:
        result = _array(base, metadata, value, loc, errors)
    else:
        result = _leaf(tp, base, metadata, value, loc, errors)
    if result is _BAD:
        return _BAD
    return _hooks(Check, metadata, result, loc, errors)


def _leaf(
    tp: Any, base: Any, metadata: tuple[Any, ...], value: Any, loc: Loc, errors: list[Error]
) -> Any:
    try:
        result = msgspec.convert(value, tp, dec_hook=_dec_hook)
    except msgspec.ValidationError:
        longest = meta_value(metadata, "max_length")
        if (base is str and isinstance(value, str) and longest is not None
                and len(value) > longest):
            errors.append(Error(loc, STRING_TOO_LONG, value, {"max_length": longest}))
        else:
            errors.append(Error(loc, "invalid", value))
        return _BAD
    if isinstance(result, float) and not math.isfinite(result):
        errors.append(Error(loc, "finite_number", value))  # msgspec accepts inf and nan
        return _BAD
    return result


def _array(
    tp: Any, metadata: tuple[Any, ...], value: Any, loc: Loc, errors: list[Error]
) -> Any:
    if not isinstance(value, list | tuple):
        errors.append(Error(loc, "tuple_type", value))
        return _BAD
    (item_type, _ellipsis) = typing.get_args(tp)
    longest, shortest = meta_value(metadata, "max_length"), meta_value(metadata, "min_length")
    items: list[Any] = []
    item_errors: list[Error] = []
    for index, item in enumerate(value):
        result = _value(item_type, item, (*loc, index), item_errors)
        if result is _BAD:
            continue
        items.append(result)
        if longest is not None and len(items) > longest:
            # one problem for the array, not one per item of a huge one
            errors.append(Error(loc, TOO_LONG, value, {"max_length": longest}))
            return _BAD
    errors.extend(item_errors)
    if shortest is not None and len(items) < shortest:
        errors.append(Error(loc, TOO_SHORT, value, {"min_length": shortest}))
        return _BAD
    return _BAD if item_errors else tuple(items)


def _table(cls: type, raw: Mapping[str, Any], loc: Loc, errors: list[Error]) -> Any:
    before = len(errors)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = {f.name for f in fields}
    errors.extend(Error((*loc, key), UNKNOWN, value) for key, value in raw.items()
                  if key not in names)
    hints = type_hints(cls)
    values: dict[str, Any] = {}
    for field in fields:
        if field.name in raw:
            result = _value(hints[field.name], raw[field.name], (*loc, field.name), errors)
            if result is not _BAD:
                values[field.name] = result
        elif (field.default is dataclasses.MISSING
              and field.default_factory is dataclasses.MISSING):
            errors.append(Error((*loc, field.name), MISSING, raw))
    if len(errors) > before:
        return _BAD
    return cls(**values)


def check(cls: type, raw: Mapping[str, Any]) -> tuple[Any, list[Error]]:
    """Check the table ``raw`` against the model ``cls``.

    Returns ``(model, [])`` (an instance of ``cls``) when all is well, else
    ``(None, errors)`` with every error found, in no particular order (see
    :func:`reconciler.config.problems.from_errors`).
    """
    errors: list[Error] = []
    model = _table(cls, raw, (), errors)
    return (None, errors) if errors else (model, [])
