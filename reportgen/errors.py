"""Exceptions that reach the user as one clear line, each mapped to an exit code."""

from __future__ import annotations


class ReportgenError(Exception):
    """Base class of errors caused by the user's input; the CLI prints the message alone."""

    exit_code = 2


class DataError(ReportgenError):
    """The image folder cannot be audited (too few classes or images, unreadable tree)."""


class ModelError(ReportgenError):
    """A model name, weights source or checkpoint cannot be used."""


class OutputError(ReportgenError):
    """The output folder cannot be written."""
