"""The one error type users see.

Every error a user can cause is a :class:`CnnlabError` whose message names the
file, argument or field, says what was wrong and how to fix it. The CLI prints
the message without a traceback and exits with status 2.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """An error the user can fix: the message says where, what and how."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        parts = [f"{where}: {message}" if where else message]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))
        self.where = where
        self.fix = fix
