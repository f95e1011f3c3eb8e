"""Pure formatting of numbers and word lists, shared by the sentences and the templates.

``FILTERS`` registers the functions as Jinja filters in ``render.html``; the narrative calls the same
functions with the same defaults, so a number reads the same on a card, in a table and in a sentence: a
measured share as a percentage with one decimal (``'66.7%'``), a score with three decimals (``'0.953'``), a
count with thousands separators. Values are rounded once, here, from the figures the analyses give.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

DASH = "—"  # shown for a missing value
MAX_LISTED = 3  # names in one list before "and N more"


def fmt_percent(value: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage: ``0.9731 -> '97.3%'``; the one form of a measured share.

    Exactly 0 and 1 read ``'0%'`` and ``'100%'``; a share between them never does: it gets one decimal more
    (``fmt_percent(0.9996) -> '99.96%'``). ``digits`` is for the round limits of the rules (``'50%'``);
    measured shares keep the default, in the sentences and in the tables alike.
    """
    if not _finite(value):
        return DASH
    if value in (0, 1):
        return f"{100 * value:.0f}%"
    text = f"{100 * value:.{digits}f}%"
    ends = (text == f"{100:.{digits}f}%" and value < 1) or (text == f"{0:.{digits}f}%" and value > 0)
    return f"{100 * value:.{digits + 1}f}%" if ends else text


def fmt_score(value: float | None) -> str:
    """A softmax score with three decimals: ``0.97312 -> '0.973'``; the one form of a score.

    A tiny non-zero score reads ``'<0.001'``; a score below 1 never reads as 1: ``0.9996 -> '0.9996'``.
    """
    if not _finite(value):
        return DASH
    text = fmt_number(value)
    return f"{value:.4f}" if text == "1.000" and value < 1 else text


def fmt_number(value: float | None, digits: int = 3) -> str:
    """A real number with fixed decimals (losses, ECE, the shortcut check's figures); ``1e-6 -> '<0.001'``."""
    if not _finite(value):
        return DASH
    floor = 10.0**-digits
    return f"<{floor:.{digits}f}" if 0 < value < floor / 2 else f"{value:.{digits}f}"


def fmt_count(value: int | None) -> str:
    """An integer with thousands separators: ``12345 -> '12,345'``."""
    return DASH if value is None else f"{int(value):,}"


def fmt_seconds(value: float | None) -> str:
    """A duration: ``4.2 -> '4.2 s'``, ``125 -> '2 min 05 s'``, ``4000 -> '1 h 06 min'``."""
    if not _finite(value):
        return DASH
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_datetime(iso: str | None) -> str:
    """An ISO 8601 timestamp as ``'2025-11-28 10:55 UTC'`` (the text itself when it does not parse)."""
    if not iso:
        return DASH
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    zone = moment.tzname() or ""
    return f"{moment:%Y-%m-%d %H:%M} {'UTC' if zone in ('UTC', 'UTC+00:00') else zone}".rstrip()


def fmt_plural(count: int, singular: str, plural: str | None = None) -> str:
    """``3, 'image' -> '3 images'``; ``1, 'image' -> '1 image'``; ``1234, 'image' -> '1,234 images'``."""
    word = singular if count == 1 else (plural or singular + "s")
    return f"{fmt_count(count)} {word}"


def fmt_points(value: float | None, digits: int = 1) -> str:
    """A change of a fraction in percentage points, signed: ``0.021 -> '+2.1 pts'``, ``-0.004 -> '−0.4 pts'``."""
    if not _finite(value):
        return DASH
    text = f"{100 * abs(value):.{digits}f}"
    if float(text) == 0:
        return f"±{text} pts"
    return f"{'+' if value > 0 else '−'}{text} pts"


def fmt_signed(value: float | None) -> str:
    """A change of a count, signed: ``3 -> '+3'``, ``-2 -> '−2'``, ``0 -> '±0'``."""
    if not _finite(value):
        return DASH
    n = round(value)
    return f"+{n:,}" if n > 0 else (f"−{-n:,}" if n < 0 else "±0")


def fmt_value(value: float | None, digits: int = 4) -> str:
    """A number of unknown kind (a gate's value or threshold): ``120.0 -> '120'``, ``0.03125 -> '0.0312'``."""
    if not _finite(value):
        return DASH
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def fmt_config(value: object) -> str:
    """A configuration value as written in a TOML file: ``True -> 'true'``, ``[1, 2] -> '1, 2'``, ``None -> '—'``."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_config(v) for v in value) if value else DASH
    return str(value)


def asset_url(path: str | None) -> str:
    """A file of the output folder as a relative URL (percent-encoded); refuses absolute paths and URLs.

    The output folder must keep working when it is moved or zipped, so every ``src``/``href`` is relative.

    Raises:
        ValueError: ``path`` is empty, absolute, has a URL scheme, or climbs out of the folder with ``..``.
    """
    if not path:
        raise ValueError("empty asset path")
    parts = urlsplit(path)
    posix = PurePosixPath(path.replace("\\", "/"))
    if parts.scheme or parts.netloc or posix.is_absolute() or ".." in posix.parts or ":" in posix.parts[0]:
        raise ValueError(f"asset path must be relative to the output folder, got {path!r}")
    return quote(posix.as_posix(), safe="/")


def join_words(items: Sequence[str]) -> str:
    """``['a', 'b', 'c'] -> 'a, b and c'``."""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def listed(counts: Mapping[str, int], fmt: str = "{n} {name}") -> str:
    """``{'a': 2, 'b': 1} -> '2 a, 1 b'``: non-zero counts, largest first (ties in the mapping's order).

    At most ``MAX_LISTED`` names, then ``'N more'``.
    """
    ranked = sorted(((k, v) for k, v in counts.items() if v > 0), key=lambda kv: -kv[1])
    parts = [fmt.format(n=n, name=name) for name, n in ranked[:MAX_LISTED]]
    rest = sum(n for _, n in ranked[MAX_LISTED:])
    if rest:
        parts.append(f"{rest} more")
    return ", ".join(parts)


def sentence(text: str) -> str:
    """``text`` stripped, with a full stop unless it already ends a sentence."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def is_are(count: int) -> str:
    """The verb for ``count`` things: ``'is'`` or ``'are'``."""
    return "is" if count == 1 else "are"


def has_have(count: int) -> str:
    """The verb for ``count`` things: ``'has'`` or ``'have'``."""
    return "has" if count == 1 else "have"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


FILTERS = {
    "percent": fmt_percent,
    "score": fmt_score,
    "number": fmt_number,
    "count": fmt_count,
    "seconds": fmt_seconds,
    "datetime": fmt_datetime,
    "plural": fmt_plural,
    "points": fmt_points,
    "signed": fmt_signed,
    "value": fmt_value,
    "config": fmt_config,
    "asset_url": asset_url,
}
