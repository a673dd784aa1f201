"""What every command checks the same way: one error type the user can fix, one date parser.

A command's edge module (``evalcli``, ``traincli``, ...) raises
:class:`BadRequest` with one line that says what is wrong and how to fix it;
the CLI prints that line and exits 2.
"""

from __future__ import annotations

from datetime import date, timedelta

EPOCH = date(1970, 1, 1)
DAY_MS = 86_400_000


class BadRequest(ValueError):
    """A request that cannot run as asked; ``str`` is one line with the fix."""


def day_of(text: str | None, option: str) -> int | None:
    """A ``YYYY-MM-DD`` option as days since 1970-01-01 UTC (None stays None).

    >>> day_of("2011-07-01", "--from")
    15156
    """
    if text is None:
        return None
    try:
        return (date.fromisoformat(text) - EPOCH).days
    except ValueError:
        raise BadRequest(f"{option} must be a date like 2011-07-01, got {text!r}") from None


def iso(day: int) -> str:
    """Days since 1970-01-01 as ``YYYY-MM-DD``.

    >>> iso(15156)
    '2011-07-01'
    """
    return (EPOCH + timedelta(days=int(day))).isoformat()
