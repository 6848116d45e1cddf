"""Durations as Argo Rollouts reads them (Go's ``time.ParseDuration``), and back."""
from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    """A duration string Go's time.ParseDuration would refuse."""


def parse_go_duration(text: str) -> float:
    """``"1h30m"``, ``"90s"``, ``"1.5m"``, ``"500ms"`` → seconds (like Go; ``"0"`` is 0).

    Raises :class:`DurationError` with Go's message for anything else (``"5"``: a number
    without a unit is not a Go duration)."""
    if not isinstance(text, str):
        raise DurationError(f"time: invalid duration {text!r}")
    s = text.strip()
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise DurationError(f'time: invalid duration "{text}"')
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            if re.match(r"\d", s[pos:]) and not re.match(r"(\d+(?:\.\d*)?|\.\d+)[a-zµμ]", s[pos:]):
                raise DurationError(f'time: missing unit in duration "{text}"')
            raise DurationError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def pause_seconds(value) -> float:
    """A ``pause.duration``: an integer (seconds), a string of digits (seconds) or a Go
    duration (``"5m"``), as Argo's ``RolloutPause.DurationSeconds`` reads it."""
    if isinstance(value, bool):
        raise DurationError(f"invalid pause duration {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise DurationError(f"invalid pause duration {value!r}: must be >= 0")
        return float(value)
    if isinstance(value, str):
        if value.strip().isdigit():
            return float(int(value.strip()))
        secs = parse_go_duration(value)
        if secs < 0:
            raise DurationError(f"invalid pause duration {value!r}: must be >= 0")
        return float(int(secs))   # Argo truncates to whole seconds (int32(d.Seconds()))
    raise DurationError(f"invalid pause duration {value!r}: an integer (seconds) or a duration such as 5m")


def format_duration(seconds: float) -> str:
    """Seconds → Go's ``Duration.String()``: ``300`` → ``"5m0s"``, ``0.5`` → ``"500ms"``."""
    if seconds == 0:
        return "0s"
    neg = seconds < 0
    s = abs(seconds)
    if s < 1:
        ms = s * 1000
        text = f"{ms:g}ms" if ms >= 1 else f"{s * 1e6:g}µs"
        return ("-" if neg else "") + text
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    sec_text = f"{sec:.3f}".rstrip("0").rstrip(".") if sec != int(sec) else str(int(sec))
    out = ""
    if h:
        out += f"{int(h)}h"
    if h or m:
        out += f"{int(m)}m"
    out += f"{sec_text}s"
    return ("-" if neg else "") + out


__all__ = ["DurationError", "format_duration", "parse_go_duration", "pause_seconds"]
