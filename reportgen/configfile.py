"""``reportgen run --config audit.toml``: read run options from a TOML file, under the explicit flags.

The file's keys are the ``run`` command's own parameter names, taken from the click command itself so
they can never drift from the CLI:

- the parameter name (``top_k``, ``learning_rate``, ``out_dir``, ``probes``) or a long flag without its
  dashes (``top-k``, ``lr``, ``out``, ``probe``); dashes and underscores are interchangeable;
- tables (``[train]``, ``[report]``, ...) only group keys: their names are free and their keys are
  flattened, so ``[train] epochs = 8`` is ``epochs = 8``; tables inside tables are an error;
- values have the TOML type of the option: integers for counts, numbers for floats, ``true``/``false``
  for on/off flags, strings for names and paths, arrays for pair options (``scale_range = [0.9, 1.1]``)
  and for repeatable options (``probes = ["a.jpg"]``, a single string is taken as a one-item array);
- relative paths are relative to the folder of the TOML file, not to the working directory; so is
  ``weights`` when it names a file that exists there (``DEFAULT``, ``none`` and weights names stay as
  they are).

Precedence: flags given on the command line (or through the environment) > the file > the defaults.
A repeatable option given on the command line replaces the file's whole list.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from reportgen.errors import ReportgenError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

NOT_IN_FILE = frozenset({"config", "config_file"})  # the --config option itself cannot be set from a file
FILE_OR_NAME = frozenset({"weights"})  # string options that may name a file: resolved when that file exists
_EXPLICIT_SOURCES = frozenset({ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT})


def load_config(path: Path, command: click.Command) -> dict[str, Any]:
    """Read ``path`` and return its values keyed by ``command``'s parameter names, as click would give them.

    Values are checked against each parameter's type (ranges and choices included); paths come back as
    absolute ``Path`` objects resolved against the file's folder.

    Raises:
        ReportgenError: the file is missing or not TOML, or a key is unknown, repeated or of the wrong
            type; the one-line message names the file and the key.
    """
    path = Path(path).expanduser()
    raw = _read_toml(path)
    params = _file_params(command)
    aliases = _aliases(params.values())
    values: dict[str, Any] = {}
    for key, value in _flatten(raw, path):
        name = aliases.get(_normalise(key))
        if _normalise(key) in NOT_IN_FILE:
            raise ReportgenError(f"config file '{path}': '{key}' cannot be set inside a config file")
        if name is None:
            raise ReportgenError(f"config file '{path}': unknown key '{key}'{_suggestion(key, aliases)}")
        if name in values:
            raise ReportgenError(f"config file '{path}': '{key}' sets {name} a second time")
        values[name] = _convert(params[name], value, key, path)
        if name in FILE_OR_NAME:
            values[name] = _file_if_exists(values[name], path)
    logger.info("read %d option(s) from %s", len(values), path)
    return values


def merge_options(
    cli_values: dict[str, Any], explicitly_given: set[str], file_values: dict[str, Any]
) -> dict[str, Any]:
    """Return ``cli_values`` with the file's values put in for every option not in ``explicitly_given``."""
    merged = dict(cli_values)
    for name, value in file_values.items():
        if name in explicitly_given:
            logger.debug("--%s from the command line overrides the config file", name)
            continue
        merged[name] = value
    return merged


def explicitly_given(ctx: click.Context) -> set[str]:
    """Return the names of ``ctx``'s parameters set on the command line or through the environment."""
    return {
        param.name
        for param in ctx.command.params
        if param.name is not None and ctx.get_parameter_source(param.name) in _EXPLICIT_SOURCES
    }


def apply_config_file(ctx: click.Context, cli_values: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """Load ``path`` (if given) for ``ctx.command`` and merge it under the explicit flags of ``ctx``."""
    if path is None:
        return dict(cli_values)
    return merge_options(cli_values, explicitly_given(ctx), load_config(path, ctx.command))


def require_options(values: dict[str, Any], names: Iterable[str], config_path: Path | None = None) -> None:
    """Raise a one-line ``ReportgenError`` for the first of ``names`` that is still unset (``None``)."""
    for name in names:
        if values.get(name) is None:
            where = f" or as {name} in '{config_path}'" if config_path else " or as a key in a --config file"
            raise ReportgenError(f"missing {name}: give it on the command line{where}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ReportgenError(f"config file '{path}' does not exist") from exc
    except OSError as exc:
        raise ReportgenError(f"cannot read config file '{path}': {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ReportgenError(f"config file '{path}' is not valid TOML: {exc}") from exc


def _flatten(raw: dict[str, Any], path: Path) -> list[tuple[str, Any]]:
    """Top-level keys, then the keys of each table, in file order; deeper tables are an error."""
    items: list[tuple[str, Any]] = []
    for key, value in raw.items():
        if not isinstance(value, dict):
            items.append((key, value))
            continue
        for inner_key, inner_value in value.items():
            if isinstance(inner_value, dict):
                raise ReportgenError(
                    f"config file '{path}': table [{key}.{inner_key}] is nested; use one level of tables"
                )
            items.append((inner_key, inner_value))
    return items


def _file_params(command: click.Command) -> dict[str, click.Parameter]:
    return {
        p.name: p
        for p in command.params
        if p.name is not None and p.name not in NOT_IN_FILE and p.expose_value and not p.is_eager
    }


def _aliases(params: Iterable[click.Parameter]) -> dict[str, str]:
    """Normalised key -> parameter name, for each name and each long flag (``--lr`` -> ``lr``)."""
    aliases: dict[str, str] = {}
    for param in params:
        aliases[_normalise(param.name or "")] = param.name or ""
        for opt in param.opts:
            if opt.startswith("--"):
                aliases.setdefault(_normalise(opt[2:]), param.name or "")
    return aliases


def _normalise(key: str) -> str:
    return key.strip().replace("-", "_").lower()


def _suggestion(key: str, aliases: dict[str, str]) -> str:
    close = difflib.get_close_matches(_normalise(key), list(aliases), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known keys: {', '.join(sorted(set(aliases.values())))})"


def _convert(param: click.Parameter, value: Any, key: str, path: Path) -> Any:
    """Check ``value``'s TOML type against ``param`` and convert it as click would."""
    try:
        if param.multiple:
            items = value if isinstance(value, list) else [value]
            return tuple(_convert_one(param, item, path) for item in items)
        return _convert_one(param, value, path)
    except _WrongType as exc:
        raise ReportgenError(f"config file '{path}': {key} must be {exc}, not {_describe(value)}") from None
    except click.BadParameter as exc:
        raise ReportgenError(f"config file '{path}': {key}: {exc.format_message()}") from None


class _WrongType(Exception):
    """A value has the wrong TOML type; the message says what was expected."""


def _convert_one(param: click.Parameter, value: Any, path: Path) -> Any:
    kind = param.type
    if isinstance(kind, click.Tuple):
        if not isinstance(value, list) or len(value) != len(kind.types):
            raise _WrongType(f"an array of {len(kind.types)} values")
        try:
            return tuple(_check_scalar(t, v, path) for t, v in zip(kind.types, value, strict=True))
        except _WrongType as exc:
            raise _WrongType(f"an array of {len(kind.types)} values, each {exc}") from None
    return kind.convert(_check_scalar(kind, value, path), param, None)


def _check_scalar(kind: click.ParamType, value: Any, path: Path) -> Any:
    """Refuse what click would coerce silently (``2.5`` for an int, ``"yes"`` for a flag); resolve paths."""
    if isinstance(kind, click.types.BoolParamType):
        if not isinstance(value, bool):
            raise _WrongType("true or false")
        return value
    if isinstance(kind, click.types.IntParamType):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _WrongType("an integer")
        return kind.convert(value, None, None)
    if isinstance(kind, click.types.FloatParamType):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _WrongType("a number")
        return kind.convert(float(value), None, None)
    if not isinstance(value, str):
        raise _WrongType("a string")
    if isinstance(kind, click.Path):
        resolved = Path(value).expanduser()
        return str(resolved if resolved.is_absolute() else (path.parent / resolved).absolute())
    return value


def _file_if_exists(value: str, path: Path) -> str:
    """``value`` resolved against the config file's folder when it names a file there, else unchanged."""
    candidate = Path(value).expanduser()
    if not candidate.is_absolute() and (path.parent / candidate).is_file():
        return str((path.parent / candidate).absolute())
    return value


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"
