"""Sane bounds on sizes a user types, checked before anything is allocated.

A kernel of 10^10 pixels, a Dense layer of 10^12 units or 10^7 pixels of
padding is never what a user meant; NumPy and torch would try to allocate it
and fail with an exception (or exhaust the machine). Each size a user gives is
checked here first: against a fixed bound that no real use reaches, and the
bytes it would take against the memory the machine has available now.
"""

from __future__ import annotations

import os

from cnnlab.errors import CnnlabError

__all__ = ["MAX_KERNEL_SIDE", "MAX_SIZE", "available_memory", "brief", "check_bytes", "check_size", "format_bytes"]

# The largest kernel side the lab accepts: far above any filter of the notes
# (3x3 ... 11x11) and above the size of the images a lab filters.
MAX_KERNEL_SIDE = 1025
# The largest image side, stride, dilation, padding or filter count the lab takes: 2^24, far above
# any real image (a 16-megapixel photo is 4928 wide) and well inside torch's int64 sizes.
MAX_SIZE = 1 << 24


def available_memory() -> int | None:
    """Bytes of memory available now (Linux MemAvailable, else the free pages); None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, so that a one-line error stays one short line."""
    text = repr(value)
    size = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= limit else f"{text[: limit - 12]}...{text[-8:]} ({size} characters)"


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'; binary units up to EiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} EiB"


def check_size(value: int, maximum: int, *, where: str, what: str = "size", fix: str | None = None) -> int:
    """``value`` if it is <= ``maximum``, else a CnnlabError naming the bound."""
    if value > maximum:
        raise CnnlabError(
            f"{what} {value} is over the limit of {maximum}",
            where=where,
            fix=fix or f"use a {what} of at most {maximum}",
        )
    return value


def check_bytes(count: float, *, where: str, what: str, fix: str) -> None:
    """Refuse an allocation of ``count`` bytes that is more than the memory available now."""
    available = available_memory()
    if available is not None and count > available:
        raise CnnlabError(
            f"{what} would take {format_bytes(count)}, more than the {format_bytes(available)} of memory available",
            where=where,
            fix=fix,
        )
