"""Frozen dataclasses to JSON-able primitives and back, guided by their type hints.

``to_plain`` turns tuples into lists and numpy scalars into Python numbers; ``from_plain`` rebuilds the
dataclass tree from what ``json.load`` returns, reading each field's annotation, so a reader of
``results.json`` gets the same typed objects the writer had (the report model round-trips).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar, Union

import numpy as np

T = TypeVar("T")


class SchemaError(ValueError):
    """A value does not fit the type its field declares; the message names the field's path."""


def to_plain(value: Any) -> Any:
    """``value`` (dataclasses, tuples, dicts, numpy scalars) as JSON-able primitives."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_plain(cls: type[T], data: Any, path: str = "") -> T:
    """Rebuild a ``cls`` (a dataclass) from ``to_plain``'s output; keys the class lacks are an error.

    Raises:
        SchemaError: a required field is missing, a key is unknown or a value has the wrong shape.
    """
    return _convert(cls, data, path or cls.__name__)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _union(tp, value, path)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path)
    if origin is tuple:
        return _tuple(tp, value, path)
    if origin is dict:
        value_type = typing.get_args(tp)[1]  # keys are strings in JSON and in the model
        _expect(value, dict, path)
        return {k: _convert(value_type, v, f"{path}.{k}") for k, v in value.items()}
    return _scalar(tp, value, path)


def _union(tp: Any, value: Any, path: str) -> Any:
    options = typing.get_args(tp)
    if value is None:
        if type(None) in options:
            return None
        raise SchemaError(f"{path}: null where a value is required")
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert(option, value, path)
        except SchemaError as exc:
            problems.append(str(exc))
    raise SchemaError("; ".join(problems))


def _dataclass(cls: type, value: Any, path: str) -> Any:
    _expect(value, dict, path)
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise SchemaError(f"{path}: unknown key '{unknown[0]}'")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            kwargs[f.name] = _convert(hints[f.name], value[f.name], f"{path}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SchemaError(f"{path}: missing key '{f.name}'")
    return cls(**kwargs)


def _tuple(tp: Any, value: Any, path: str) -> tuple[Any, ...]:
    _expect(value, list, path)
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
        raise SchemaError(f"{path}: {len(value)} items where {len(args)} are expected")
    return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))


def _scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise SchemaError(f"{path}: expected {getattr(tp, '__name__', tp)}, got {type(value).__name__}")


def _expect(value: Any, kind: type, path: str) -> None:
    if not isinstance(value, kind):
        raise SchemaError(f"{path}: expected {'an object' if kind is dict else 'a list'}, got {type(value).__name__}")
