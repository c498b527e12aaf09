"""The one error type users see.

Every error a user can cause is a :class:`CnnlabError` whose message names the
file, argument or field, says what was wrong and how to fix it. The CLI prints
the message without a traceback and exits with status 2.

The message is always ONE line of bounded length: line breaks (a library's
multi-line reason, a pasted value) become spaces, and each part (where, what,
fix) is cut (the place to :data:`MAX_PART` characters, what was wrong to
twice that, the fix, cnnlab's own text, to four times), so an 8,000-character
bad value is echoed as its start and its length, not in full. Messages that
quote a value use :func:`shorten` on it too.
"""

from __future__ import annotations

import re

MAX_PART = 200  # characters of each part of a message (where / what / fix) before it is cut


def shorten(text: object, limit: int = MAX_PART) -> str:
    """``text`` on one line (runs of whitespace -> one space), cut to ``limit`` characters.

    A cut value ends with ``... (N characters)`` so the reader sees that it was cut and
    how long the original was.
    """
    line = re.sub(r"\s+", " ", str(text)).strip()
    if len(line) <= limit:
        return line
    return f"{line[:limit].rstrip()}... ({len(line)} characters)"


class CnnlabError(Exception):
    """An error the user can fix: the message says where, what and how (one line, bounded)."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        message = shorten(message, 2 * MAX_PART)
        where = shorten(where) if where else where
        fix = shorten(fix, 4 * MAX_PART) if fix else fix
        parts = [f"{where}: {message}" if where else message]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))
        self.where = where
        self.fix = fix


def check_seed(seed: object, where: str = "seed") -> int:
    """A random seed as an int in [0, 2**32 - 1] (what numpy, torch and Python all accept)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise CnnlabError(f"must be a whole number from 0 to {2**32 - 1}, got {seed!r}", where=where,
                          fix="use e.g. 0, 1 or 42")
    return int(seed)
