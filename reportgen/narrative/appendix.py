"""The configuration chapter's words: the command line that reproduces the run, and the files beside the report."""

from __future__ import annotations

import functools
import operator
import shlex
from collections.abc import Callable, Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.config import RECIPES, OptionField, TrainConfig, option_fields

if TYPE_CHECKING:
    from reportgen.report import Report

PROGRAM = ("reportgen", "run")
SHOWN_AT_DEFAULT = frozenset({"seed", "recipe"})  # given even at their defaults: what a reader looks for first
_ABSENT = object()  # an option the configuration does not record (a report of an older reportgen)

# (file or folder, what it holds, shown when): "audit" only with the audit chapter, "pdf" only with --pdf
OUTPUT_FILES = (
    ("report.pdf", "this report laid out for print (A4)", "pdf"),
    ("results.json", "everything this report says, as data; --baseline reads it back", ""),
    ("predictions.csv", "every image's path, split, true and predicted class, and its score for each class", ""),
    ("suspects.csv", "the suspected label errors and images of no class, with a decision column to fill in", "audit"),
    ("duplicates.csv", "the pairs of copies, most harmful first, with their splits and classes", "audit"),
    ("slices.csv", "the slices where the model fails, strongest first, with their numbers and member paths", "audit"),
    ("model.pt", "the audited model with its classes and configuration; --checkpoint loads it", ""),
    ("run.log", "the run's log: stages, timings, warnings, skipped files", ""),
    ("assets/, figures/", "the photos, their larger versions, the Grad-CAM overlays and the charts", ""),
)


def reproducing_command(config: Mapping[str, Any]) -> str:
    """The ``reportgen run`` command line that gives the effective configuration ``config`` again.

    ``config`` is ``RunConfig.to_dict()`` (``report.run.config``). The command gives the data folder, ``--out``,
    ``--seed``, ``--recipe`` and every other option whose value differs from its default (a training
    option's default is the chosen recipe's value), each word quoted for a POSIX shell. Empty when the
    configuration does not name the data folder (a report built by hand).
    """
    if not config.get("data_dir"):
        return ""
    recipe = RECIPES.get(str(config.get("recipe")), TrainConfig())
    words = list(PROGRAM)
    for opt in option_fields():
        value = _recorded(config, opt)
        if value is _ABSENT or value is None:
            continue
        if opt.option.argument:
            words.insert(len(PROGRAM), str(value))
        elif opt.default is MISSING or opt.name in SHOWN_AT_DEFAULT or _plain(value) != _plain(_default(opt, recipe)):
            words += _option_words(opt, value)
    return " ".join(shlex.quote(word) for word in words)


def output_files(report: Report) -> tuple[tuple[str, str], ...]:
    """(file, what it holds) for each file this run wrote beside ``report.html``."""
    shown = {"": True, "audit": report.audit is not None, "pdf": bool(report.run.config.get("pdf", True))}
    return tuple((name, text) for name, text, when in OUTPUT_FILES if shown[when])


def files_note(single_file: bool) -> str:
    """What ``report.html`` needs beside it: nothing when it holds its pictures, else their folders."""
    if single_file:
        return "report.html holds its pictures itself: it can be sent alone."
    return "report.html shows its pictures from assets/ and figures/ (--no-single-file): send the whole folder."


def _recorded(config: Mapping[str, Any], opt: OptionField) -> Any:
    """The option's value in ``config`` (both values of a pair), or ``_ABSENT``."""
    try:
        return _at(config, opt.path, operator.getitem, opt)
    except (KeyError, TypeError):
        return _ABSENT


def _default(opt: OptionField, recipe: TrainConfig) -> Any:
    """What the option is when not given: its field's default, or for a training option the recipe's value."""
    return _at(recipe, opt.path[1:], getattr, opt) if opt.recipe else opt.default


def _at(root: Any, path: tuple[str, ...], step: Callable[[Any, str], Any], opt: OptionField) -> Any:
    """The value at ``path`` under ``root``, going down by ``step``; a pair option's two values."""
    paths = [path, (*path[:-1], opt.option.pair)] if opt.option.pair else [path]
    values = [functools.reduce(step, p, root) for p in paths]
    return tuple(values) if opt.option.pair else values[0]


def _option_words(opt: OptionField, value: Any) -> list[str]:
    if opt.option.negatable:
        return [opt.flag if value else "--no-" + opt.flag.removeprefix("--")]
    if opt.option.pair:
        return [opt.flag, *(_word(v) for v in value)]
    if opt.repeatable:
        return [word for v in value for word in (opt.flag, _word(v))]
    return [opt.flag, _word(value)]


def _word(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr: the shortest float that reads back


def _plain(value: Any) -> Any:
    """``value`` as JSON would hold it, so that a default (tuple, Path) compares with a recorded value (list, str)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value
