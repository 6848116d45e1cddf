"""Read load-test results: wrk2 (and wrk), fortio, k6, oha and hey, into one shape.

    r = gwlib.latency.load("results/wrk2-linkerd-200rps.txt")      # tool detected
    r = gwlib.latency.load(text, tool="fortio", target="echo", rate=200)
    r.to_frame()          # tidy rows: tool, target, rate, connections, percentile, latency_ms, ...
    r.histogram           # the full distribution, where the tool printed one

What each tool prints, and in which unit (all converted to milliseconds here):

========  ==================================================  =====================================
tool      formats                                             units
========  ==================================================  =====================================
wrk2/wrk  stdout: summary percentiles + (wrk2) the HdrHistogram  ``us``/``ms``/``s``/``m`` (``m`` is
          "Detailed Percentile spectrum"; ``--u_latency``      *minutes*: wrk's ``format_time_us``);
          adds the uncorrected spectrum                       spectrum values in ms
fortio    ``-json`` result (also inside mixed log output);     histogram values in **seconds**,
          the text report (``# target 50% ...``)               ``ActualDuration`` in **ns**,
                                                              ``RequestedQPS`` a string ("max")
k6        ``handleSummary`` data (``JSON.stringify(data)``)    time trends in ms; legacy thresholds
          and the legacy ``--summary-export`` file             are ``true`` when they *failed*
oha       ``--output-format json`` (``-j``) and the text       seconds (JSON); text units printed
          report (ANSI colours stripped)                       (``secs``, ``ms``, ``10 sec`` ...)
hey       the text report                                      seconds
========  ==================================================  =====================================

A file that cannot be read raises :class:`ParseError` naming the tool, the file and the
line (JSON: the line of a syntax error, or the path of the bad field). Nothing else is
raised for bad input.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .histogram import Histogram
from .result import ParseError, Result

TOOLS = ("wrk2", "wrk", "fortio", "k6", "oha", "hey", "hdrhistogram")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_NUM = r"[0-9]+(?:\.[0-9]+)?"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# -- entry point -------------------------------------------------------------------------------

def load(path_or_text: str | os.PathLike | bytes, tool: str | None = None, *,
         target: str | None = None, rate: float | None = None, connections: int | None = None,
         run: str | None = None, mode: str | None = None) -> Result:
    """Parse one result (a file path, or the text itself); ``tool`` is detected when omitted.

    The keyword arguments fill in what the file does not say (wrk2 never prints its ``-R``
    rate, k6 summaries do not name the target) or override it.
    """
    text, source = _read(path_or_text)
    text = strip_ansi(text.replace("\r\n", "\n").replace("\r", "\n")).lstrip("\ufeff")
    if tool is None:
        tool = detect(text, source)
    elif tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
    parser = _PARSERS[tool]
    try:
        result = parser(text, source)
    except ParseError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            ZeroDivisionError, RecursionError) as exc:  # a safety net: name it as ours
        raise ParseError(tool, f"unreadable content ({type(exc).__name__}: {exc})", source=source) from exc
    overrides = {k: v for k, v in {"target": target, "rate": rate, "connections": connections,
                                   "run": run, "mode": mode}.items() if v is not None}
    if "rate" in overrides and "mode" not in overrides and result.mode is None:
        overrides["mode"] = "open"
    return result.replace(**overrides) if overrides else result


def _read(path_or_text: Any) -> tuple[str, str | None]:
    if isinstance(path_or_text, bytes):
        return path_or_text.decode("utf-8", errors="replace"), None
    if isinstance(path_or_text, os.PathLike):
        p = Path(path_or_text)
        return p.read_text(encoding="utf-8", errors="replace"), str(p)
    if not isinstance(path_or_text, str):
        raise TypeError(f"expected a path or the text of a result, got {type(path_or_text).__name__}")
    s = path_or_text
    if "\n" not in s and len(s) < 4096 and not s.lstrip().startswith(("{", "[")):
        p = Path(s)
        try:
            is_file = p.is_file()
        except OSError:
            is_file = False
        if is_file:
            return p.read_text(encoding="utf-8", errors="replace"), str(p)
        if s.strip() and re.search(r"\.(txt|json|log|out|hgrm)$", s.strip()):
            raise ParseError("load", f"no such file: {s.strip()!r}")
    return s, None


def detect(text: str, source: str | None = None) -> str:
    """Which tool wrote this text (raises :class:`ParseError` when none fits)."""
    t = strip_ansi(text)
    if "Detailed Percentile spectrum" in t or "HdrHistogram" in t or "Thread calibration" in t:
        return "wrk2"
    if re.search(r"^Running \S+ test @ ", t, re.M) or "Thread Stats" in t:
        return "wrk"
    stripped = t.lstrip()
    if stripped.startswith("{") or re.search(r"^\{", t, re.M):
        if '"DurationHistogram"' in t or '"RequestedQPS"' in t:
            return "fortio"
        if '"root_group"' in t or ('"metrics"' in t and '"http_req' in t):
            return "k6"
        if '"latencyPercentiles"' in t or '"responseTimeHistogram"' in t or '"successRate"' in t:
            return "oha"
    if "Response time distribution:" in t or "Success rate:" in t:
        return "oha"
    if "Latency distribution:" in t and "Summary:" in t:
        return "hey"
    if re.search(r"^# target \d", t, re.M) or "# range, mid point, percentile, count" in t:
        return "fortio"
    if re.search(r"^\s*Value\s+Percentile\s+TotalCount", t, re.M):
        return "hdrhistogram"
    head = next((ln.strip() for ln in t.splitlines() if ln.strip()), "")
    raise ParseError("detect", "could not tell which tool wrote this (first line: "
                     f"{head[:60]!r}); pass tool= one of {', '.join(TOOLS)}", source=source)


# -- helpers -----------------------------------------------------------------------------------

def _lines(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.split("\n"), start=1))


def _num(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {s}")
    return v


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def wrk_time_ms(text: str) -> float:
    """A wrk time string in ms: ``'635.91us'``, ``'1.14s'``, ``'4.40m'`` (minutes!)."""
    m = re.fullmatch(rf"({_NUM})(us|ms|s|m|h)?", text.strip())
    if not m:
        raise ValueError(f"not a wrk time: {text!r}")
    return _num(m.group(1)) * _WRK_UNITS[m.group(2) or "us"]


def _spectrum_histogram(rows: list[tuple[float, float, int]]) -> Histogram:
    """A histogram from spectrum rows (value_ms, percentile fraction, cumulative count)."""
    values = np.array([r[0] for r in rows])
    cum = np.array([r[2] for r in rows], dtype=np.int64)
    counts = np.diff(np.concatenate([[0], cum]))
    keep = counts > 0
    return Histogram.from_values(values[keep], counts[keep])


def _check_spectrum_row(tool: str, prev: tuple[float, float, int] | None, row: tuple[float, float, int],
                        lineno: int, source: str | None) -> None:
    value, pct, cum = row
    if not 0.0 <= pct <= 1.0:
        raise ParseError(tool, f"percentile {pct} is not a fraction between 0 and 1", lineno, source)
    if prev is not None and (value < prev[0] or pct < prev[1] or cum < prev[2]):
        raise ParseError(tool, "spectrum rows must not decrease (value, percentile and total count)",
                         lineno, source)


_SPECTRUM_ROW = re.compile(rf"^\s*({_NUM})\s+({_NUM})\s+(\d+)\s+({_NUM}|inf)\s*$")
_FOOTER = re.compile(r"^#\[\s*(\w+)\s*=\s*([-\w.]+)\s*,\s*([\w ]+?)\s*=\s*([-\w.]+)\s*\]\s*$")


def _parse_spectrum_block(tool: str, lines: list[tuple[int, str]], start: int, source: str | None
                          ) -> tuple[int, list[tuple[float, float, int]], dict[str, float]]:
    """Read a "Value Percentile TotalCount 1/(1-Percentile)" table from ``start``.

    Returns the index after the block, the rows and the footer values.
    """
    rows: list[tuple[float, float, int]] = []
    footer: dict[str, float] = {}
    i = start
    seen_header = False
    while i < len(lines):
        lineno, raw = lines[i]
        s = raw.strip()
        if not s:
            i += 1
            continue
        if re.match(r"^Value\s+Percentile\s+TotalCount", s):
            seen_header = True
            i += 1
            continue
        m = _SPECTRUM_ROW.match(raw)
        if m:
            if not seen_header:
                raise ParseError(tool, "spectrum row before the 'Value Percentile TotalCount' header",
                                 lineno, source)
            row = (_num(m.group(1)), _num(m.group(2)), int(m.group(3)))
            _check_spectrum_row(tool, rows[-1] if rows else None, row, lineno, source)
            rows.append(row)
            i += 1
            continue
        if s.startswith("#["):
            fm = _FOOTER.match(s)
            if not fm:
                raise ParseError(tool, f"cannot read spectrum footer {s!r}", lineno, source)
            for k, v in ((fm.group(1), fm.group(2)), (fm.group(3), fm.group(4))):
                try:
                    footer[k.strip()] = _num(v)
                except ValueError:
                    raise ParseError(tool, f"footer value {v!r} is not a number", lineno, source) from None
            i += 1
            continue
        if s.startswith("----") or not seen_header:
            break
        if rows and not footer:
            raise ParseError(tool, f"expected a spectrum row 'value percentile count 1/(1-p)', got {s[:60]!r}",
                             lineno, source)
        break
    if not rows:
        ln = lines[min(start, len(lines) - 1)][0] if lines else None
        raise ParseError(tool, "the percentile spectrum has no rows", ln, source)
    if "Total count" in footer and int(footer["Total count"]) != rows[-1][2]:
        raise ParseError(tool, f"footer says Total count = {int(footer['Total count'])} but the last row "
                         f"has {rows[-1][2]}", lines[i - 1][0], source)
    return i, rows, footer


def _standard_percentiles(h: Histogram, ps=(50, 75, 90, 99, 99.9, 99.99, 100)) -> dict[float, float]:
    return {float(p): float(v) for p, v in zip(ps, h.percentiles(ps))}


# -- wrk2 / wrk --------------------------------------------------------------------------------

_PCT_LINE = re.compile(rf"^\s*({_NUM})%\s+({_NUM}(?:us|ms|s|m|h))\s*$")


def parse_wrk(text: str, source: str | None = None) -> Result:
    """wrk2 (``--latency``/``--u_latency``) or wrk output."""
    lines = _lines(text)
    name = "wrk2" if ("HdrHistogram" in text or "Thread calibration" in text
                      or "Detailed Percentile spectrum" in text) else "wrk"
    meta: dict[str, Any] = {"calibration_ms": []}
    sections: dict[str, dict[float, float]] = {}
    spectra: dict[str, list[tuple[float, float, int]]] = {}
    footers: dict[str, dict[str, float]] = {}
    target = threads = connections = requests = None
    duration = achieved = rate = None
    errors = 0
    hdr = False
    current: str | None = None
    i = 0
    while i < len(lines):
        lineno, raw = lines[i]
        s = raw.strip()
        i += 1
        if not s:
            continue
        if m := re.match(r"^Running (\S+) test @ (\S+)", s):
            meta["planned_duration"] = m.group(1)
            target = m.group(2)
            continue
        if m := re.match(r"^(\d+) threads and (\d+) connections", s):
            threads, connections = int(m.group(1)), int(m.group(2))
            continue
        if m := re.match(rf"^Thread calibration: mean lat\.: ({_NUM})ms", s):
            meta["calibration_ms"].append(_num(m.group(1)))
            hdr = True
            continue
        if re.match(r"^(?:[$#>]\s*)?(\S*/)?wrk2?\s", s) and (m := re.search(r"(?:-R\s*|--rate[= ])(\d+)([kM]?)", s)):
            rate = float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6}[m.group(2)]
            continue
        if s.startswith("Thread Stats"):
            continue
        if m := re.match(r"^Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)%$", s):
            try:
                meta["mean_ms"], meta["stdev_ms"], meta["max_ms"] = (wrk_time_ms(m.group(k)) for k in (1, 2, 3))
            except ValueError as exc:
                raise ParseError(name, f"cannot read the Latency stats line: {exc}", lineno, source) from None
            continue
        if s.startswith("Req/Sec"):
            continue
        if s.startswith("Latency Distribution"):
            if "Uncorrected" in s:
                current = "uncorrected"
            elif "HdrHistogram" in s:
                current, hdr = "recorded", True
            else:
                current = "latency"
            sections[current] = {}
            continue
        if s.startswith("Detailed Percentile spectrum"):
            if current is None:
                raise ParseError(name, "a percentile spectrum outside a 'Latency Distribution' section",
                                 lineno, source)
            i, rows, footer = _parse_spectrum_block(name, lines, i, source)
            spectra[current], footers[current] = rows, footer
            hdr = True
            continue
        if s.startswith("----"):
            current = None
            continue
        if current is not None and "%" in s and not s.startswith(("Requests/sec", "Transfer/sec")):
            m = _PCT_LINE.match(raw)
            if not m:
                raise ParseError(name, f"expected a percentile line like ' 50.000%   21.61ms', got {s[:60]!r}",
                                 lineno, source)
            p = _num(m.group(1))
            if not 0 <= p <= 100:
                raise ParseError(name, f"percentile {p} is not between 0 and 100", lineno, source)
            try:
                sections[current][p] = wrk_time_ms(m.group(2))
            except ValueError as exc:
                raise ParseError(name, str(exc), lineno, source) from None
            continue
        if m := re.match(r"^(\d+) requests in (\S+), (\S+) read", s):
            requests = int(m.group(1))
            try:
                duration = wrk_time_ms(m.group(2)) / 1e3
            except ValueError as exc:
                raise ParseError(name, str(exc), lineno, source) from None
            current = None
            continue
        if m := re.match(r"^Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", s):
            meta["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
            errors += sum(map(int, m.groups()))
            continue
        if m := re.match(r"^Non-2xx or 3xx responses: (\d+)", s):
            meta["non_2xx_3xx"] = int(m.group(1))
            errors += int(m.group(1))
            continue
        if m := re.match(rf"^Requests/sec:\s+({_NUM})", s):
            achieved = _num(m.group(1))
            continue
        if s.startswith("Transfer/sec"):
            continue
        # anything else (a shell prompt, kubectl noise) is ignored outside sections
    tool = "wrk2" if hdr else "wrk"
    main = "recorded" if "recorded" in sections or "recorded" in spectra else "latency"
    percentiles = dict(sections.get(main, {}))
    histogram = None
    if main in spectra:
        histogram = _spectrum_histogram(spectra[main])
        meta["spectrum_footer"] = footers.get(main, {})
    if "uncorrected" in spectra:
        meta["uncorrected_histogram"] = _spectrum_histogram(spectra["uncorrected"])
    if "uncorrected" in sections:
        meta["uncorrected_percentiles"] = sections["uncorrected"]
    if not percentiles and histogram is not None:
        percentiles = _standard_percentiles(histogram)
    if not percentiles:
        raise ParseError(tool, "no latency percentiles found (run wrk with --latency)", source=source)
    if "max_ms" in meta and 100.0 not in percentiles:
        percentiles[100.0] = meta["max_ms"]
    meta["threads"] = threads
    if not meta["calibration_ms"]:
        del meta["calibration_ms"]
    return Result(tool=tool, percentiles=percentiles, histogram=histogram, target=target, rate=rate,
                  connections=connections, mode="open" if tool == "wrk2" else "closed",
                  corrected=(tool == "wrk2" and main == "recorded"), requests=requests, errors=errors,
                  duration_s=duration, achieved_rate=achieved, source=source, meta=meta)


def parse_hgrm(text: str, source: str | None = None) -> Result:
    """An HdrHistogram percentile distribution (``.hgrm``), values in ms."""
    lines = _lines(text)
    start = next((i for i, (_, s) in enumerate(lines) if re.match(r"^\s*Value\s+Percentile\s+TotalCount", s)),
                 None)
    if start is None:
        raise ParseError("hdrhistogram", "no 'Value Percentile TotalCount 1/(1-Percentile)' header",
                         source=source)
    _, rows, footer = _parse_spectrum_block("hdrhistogram", lines, start, source)
    h = _spectrum_histogram(rows)
    return Result(tool="hdrhistogram", percentiles=_standard_percentiles(h), histogram=h,
                  requests=rows[-1][2], source=source, meta={"spectrum_footer": footer})


# -- fortio ------------------------------------------------------------------------------------

def _json_doc(tool: str, text: str, source: str | None, want: tuple[str, ...] = ()) -> Any:
    """The JSON document in ``text``, which may carry log lines (even JSON log records)
    around it: the first object that has one of the ``want`` keys wins."""
    s = text.strip()
    try:
        return json.loads(s)
    except json.JSONDecodeError as exc:
        first_exc, first_line = exc, exc.lineno + text[: len(text) - len(text.lstrip())].count("\n")
    except RecursionError:
        raise ParseError(tool, "JSON nested too deeply", source=source) from None
    decoder = json.JSONDecoder()
    for m in re.finditer(r"^\{", text, re.M):
        try:
            doc, _ = decoder.raw_decode(text[m.start():])
        except json.JSONDecodeError as exc:
            if not want or any(f'"{k}"' in text[m.start():m.start() + 200] for k in want):
                first_exc, first_line = exc, exc.lineno + text.count("\n", 0, m.start())
            continue
        except RecursionError:
            raise ParseError(tool, "JSON nested too deeply", source=source) from None
        if isinstance(doc, dict) and (not want or any(k in doc for k in want)):
            return doc
    raise ParseError(tool, f"invalid JSON: {first_exc.msg}", first_line, source)


class _J:
    """Typed access into a JSON document with errors that name the field path."""

    def __init__(self, tool: str, source: str | None):
        self.tool, self.source = tool, source

    def fail(self, path: str, msg: str) -> ParseError:
        return ParseError(self.tool, f"{path}: {msg}", source=self.source)

    def obj(self, doc: Any, path: str) -> dict:
        if not isinstance(doc, dict):
            raise self.fail(path, f"expected an object, got {type(doc).__name__}")
        return doc

    def get(self, doc: dict, key: str, path: str, kind: str = "number", required: bool = True) -> Any:
        full = f"{path}.{key}" if path else key
        if key not in doc or doc[key] is None:
            if required:
                raise self.fail(full, "missing")
            return None
        v = doc[key]
        if kind == "number":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.fail(full, f"expected a number, got {v!r}"[:120])
        elif kind == "int":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                if isinstance(v, float) and v.is_integer() and v >= 0:
                    return int(v)
                raise self.fail(full, f"expected a count, got {v!r}"[:120])
        elif kind == "object" and not isinstance(v, dict):
            raise self.fail(full, f"expected an object, got {type(v).__name__}")
        elif kind == "list" and not isinstance(v, list):
            raise self.fail(full, f"expected a list, got {type(v).__name__}")
        elif kind == "string" and not isinstance(v, str):
            raise self.fail(full, f"expected a string, got {type(v).__name__}")
        return v

    def counts(self, d: Any, path: str) -> dict[str, int]:
        d = self.obj(d, path)
        out = {}
        for k, v in d.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise self.fail(f"{path}.{k}", f"expected a count, got {v!r}"[:120])
            out[str(k)] = v
        return out


def _uniform_spread(start_ms: float, end_ms: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Spread ``count`` values evenly over a bucket (fortio interpolates linearly too)."""
    k = int(min(count, 64))
    if k <= 0:
        return np.zeros(0), np.zeros(0, np.int64)
    pts = start_ms + (end_ms - start_ms) * (np.arange(k) + 0.5) / k
    base, extra = divmod(count, k)
    c = np.full(k, base, np.int64)
    c[:extra] += 1
    return pts, c


def parse_fortio(text: str, source: str | None = None) -> Result:
    """fortio's ``-json`` result (or, for text output, :func:`parse_fortio_text`)."""
    if not re.search(r"^\s*\{", text, re.M):
        return parse_fortio_text(text, source)
    doc = _json_doc("fortio", text, source, ("DurationHistogram", "RequestedQPS"))
    j = _J("fortio", source)
    doc = j.obj(doc, "(top level)")
    if "EndpointResults" in doc and "DurationHistogram" not in doc:
        raise j.fail("EndpointResults", "a file of several fortio runs; load each run's JSON separately")
    dh = j.get(doc, "DurationHistogram", "", "object")
    count = j.get(dh, "Count", "DurationHistogram", "int")
    data = j.get(dh, "Data", "DurationHistogram", "list", required=False) or []
    vals: list[np.ndarray] = []
    cnts: list[np.ndarray] = []
    total = 0
    prev_end = -math.inf
    for k, b in enumerate(data):
        path = f"DurationHistogram.Data[{k}]"
        b = j.obj(b, path)
        start = j.get(b, "Start", path)
        end = j.get(b, "End", path)
        c = j.get(b, "Count", path, "int")
        if start < 0 or end < start - 1e-12:
            raise j.fail(path, f"bucket [{start}, {end}] is not a valid range of seconds")
        if start < prev_end - 1e-9:
            raise j.fail(path, "buckets must be in increasing order")
        prev_end = end
        v, n = _uniform_spread(start * 1e3, max(start, end) * 1e3, c)
        vals.append(v)
        cnts.append(n)
        total += c
    histogram = None
    if data:
        if total != count:
            raise j.fail("DurationHistogram.Data", f"bucket counts add up to {total}, but Count is {count}")
        histogram = Histogram.from_values(np.concatenate(vals), np.concatenate(cnts)) if total else None
    percentiles: dict[float, float] = {}
    for k, p in enumerate(j.get(dh, "Percentiles", "DurationHistogram", "list", required=False) or []):
        path = f"DurationHistogram.Percentiles[{k}]"
        p = j.obj(p, path)
        pct = j.get(p, "Percentile", path)
        val = j.get(p, "Value", path)
        if not 0 <= pct <= 100 or val < 0:
            raise j.fail(path, f"percentile {pct} / value {val} out of range")
        percentiles[float(pct)] = float(val) * 1e3
    if count:
        mx = j.get(dh, "Max", "DurationHistogram")
        percentiles[100.0] = float(mx) * 1e3
        if len(percentiles) == 1 and histogram is not None:
            percentiles.update(_standard_percentiles(histogram, (50, 75, 90, 99, 99.9)))
    if not count:
        raise j.fail("DurationHistogram.Count", "the run recorded no calls")
    qps = doc.get("RequestedQPS")
    rate = None
    if isinstance(qps, (int, float)) and not isinstance(qps, bool):
        rate = float(qps) or None
    elif isinstance(qps, str):
        if qps.strip().lower() not in ("max", "0", "-1", ""):
            try:
                rate = float(qps) or None
            except ValueError:
                raise j.fail("RequestedQPS", f"expected a number or 'max', got {qps!r}"[:120]) from None
    elif qps is not None:
        raise j.fail("RequestedQPS", f"expected a string, got {type(qps).__name__}")
    dur_ns = j.get(doc, "ActualDuration", "", "int", required=False)
    ret = j.counts(doc["RetCodes"], "RetCodes") if isinstance(doc.get("RetCodes"), dict) else {}
    errors = sum(v for k, v in ret.items() if k not in ("200", "SERVING", "OK"))
    conns = j.get(doc, "NumThreads", "", "int", required=False)
    target = doc.get("URL") or doc.get("Destination")
    meta = {k: doc[k] for k in ("RunType", "Labels", "StartTime", "Version", "RequestedDuration", "Jitter",
                                "Uniform", "NoCatchUp", "RunID") if k in doc}
    meta.update(mean_ms=_maybe_ms(dh.get("Avg")), stdev_ms=_maybe_ms(dh.get("StdDev")),
                min_ms=_maybe_ms(dh.get("Min")), ret_codes=ret)
    return Result(tool="fortio", percentiles=percentiles, histogram=histogram,
                  target=target if isinstance(target, str) else None, rate=rate, connections=conns,
                  mode="open" if rate else "closed", corrected=False, requests=count, errors=errors,
                  duration_s=None if dur_ns is None else dur_ns / 1e9,
                  achieved_rate=_maybe_float(doc.get("ActualQPS")), source=source, meta=meta)


def _maybe_ms(v: Any) -> float | None:
    return float(v) * 1e3 if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _maybe_float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


_FORTIO_BUCKET = re.compile(rf"^(>=?)\s*({_NUM})\s*(<=?)\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*(\d+)\s*$")


def parse_fortio_text(text: str, source: str | None = None) -> Result:
    """fortio's text report: the histogram table and ``# target p% value`` lines (seconds)."""
    lines = _lines(text)
    vals: list[np.ndarray] = []
    cnts: list[np.ndarray] = []
    percentiles: dict[float, float] = {}
    meta: dict[str, Any] = {}
    rate = conns = requests = None
    achieved = None
    in_table = False
    errors = 0
    for lineno, raw in lines:
        s = raw.strip()
        if not s:
            continue
        if s.startswith("# range, mid point, percentile, count"):
            in_table, vals, cnts = True, [], []   # keep only the last table (the run's own)
            continue
        if in_table and s.startswith((">", "<")):
            m = _FORTIO_BUCKET.match(s)
            if not m:
                raise ParseError("fortio", f"cannot read histogram row {s[:60]!r}", lineno, source)
            lo, hi, c = _num(m.group(2)), _num(m.group(4)), int(m.group(7))
            if hi < lo:
                raise ParseError("fortio", f"bucket {lo} .. {hi} is not a range", lineno, source)
            v, n = _uniform_spread(lo * 1e3, hi * 1e3, c)
            vals.append(v)
            cnts.append(n)
            continue
        in_table = False
        if m := re.match(rf"^# target ({_NUM})% ({_NUM}(?:e-?\d+)?)$", s):
            percentiles[_num(m.group(1))] = _num(m.group(2)) * 1e3
            continue
        if m := re.search(rf"Starting at ({_NUM}|max) qps with (\d+) thread", s):
            rate = None if m.group(1) == "max" else (_num(m.group(1)) or None)
            conns = int(m.group(2))
            continue
        if m := re.match(rf"^All done (\d+) calls .*?({_NUM}) qps", s):
            requests, achieved = int(m.group(1)), _num(m.group(2))
            continue
        if m := re.match(r"^Code (-?\d+) : (\d+)", s):
            if m.group(1) != "200":
                errors += int(m.group(2))
            continue
        if m := re.search(rf"Aggregated Function Time : count (\d+) avg ({_NUM}(?:e-?\d+)?) \+/- ({_NUM}(?:e-?\d+)?) "
                          rf"min ({_NUM}(?:e-?\d+)?) max ({_NUM}(?:e-?\d+)?)", s):
            meta.update(mean_ms=_num(m.group(2)) * 1e3, stdev_ms=_num(m.group(3)) * 1e3,
                        min_ms=_num(m.group(4)) * 1e3)
            percentiles[100.0] = _num(m.group(5)) * 1e3
            continue
    histogram = Histogram.from_values(np.concatenate(vals), np.concatenate(cnts)) if vals else None
    if histogram is not None and histogram.count == 0:
        histogram = None
    if not percentiles and histogram is None:
        raise ParseError("fortio", "no '# target' percentiles and no histogram table found", source=source)
    if histogram is not None and len([p for p in percentiles if p < 100]) == 0:
        percentiles.update(_standard_percentiles(histogram, (50, 75, 90, 99, 99.9)))
    return Result(tool="fortio", percentiles=percentiles, histogram=histogram, rate=rate, connections=conns,
                  mode="open" if rate else "closed", corrected=False, requests=requests, errors=errors,
                  achieved_rate=achieved, source=source, meta=meta)


# -- k6 ----------------------------------------------------------------------------------------

_K6_STAT = re.compile(r"^p\((" + _NUM + r")\)$")


def parse_k6(text: str, source: str | None = None) -> Result:
    """k6 ``handleSummary`` data or the legacy ``--summary-export`` file (times in ms)."""
    doc = _json_doc("k6", text, source, ("metrics",))
    j = _J("k6", source)
    doc = j.obj(doc, "(top level)")
    metrics = j.get(doc, "metrics", "", "object")
    name = "http_req_duration"
    if name not in metrics:
        raise j.fail("metrics", "no http_req_duration trend (was this an HTTP test?)")
    raw = j.obj(metrics[name], f"metrics.{name}")
    legacy = "values" not in raw
    values = raw if legacy else j.get(raw, "values", f"metrics.{name}", "object")
    vpath = f"metrics.{name}" + ("" if legacy else ".values")
    if not legacy and raw.get("contains", "time") != "time":
        raise j.fail(f"metrics.{name}.contains", f"expected 'time', got {raw.get('contains')!r}")
    percentiles: dict[float, float] = {}
    meta: dict[str, Any] = {"format": "summary-export" if legacy else "handleSummary"}
    for key, v in values.items():
        if key == "thresholds":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise j.fail(f"{vpath}.{key}", f"expected a number of ms, got {v!r}"[:120])
        if key == "med":
            percentiles[50.0] = float(v)
        elif key == "max":
            percentiles[100.0] = float(v)
        elif key == "min":
            meta["min_ms"] = float(v)
        elif key == "avg":
            meta["mean_ms"] = float(v)
        elif m := _K6_STAT.match(key):
            p = _num(m.group(1))
            if not 0 <= p <= 100:
                raise j.fail(f"{vpath}.{key}", "percentile out of range")
            percentiles[p] = float(v)
        else:
            meta[key] = float(v)
    if not percentiles:
        raise j.fail(vpath, "no percentiles (med, p(N), max) in the trend")
    th = raw.get("thresholds")
    if isinstance(th, dict):   # legacy: true means the threshold FAILED; new: {"ok": bool}
        meta["thresholds_ok"] = {k: (not v) if legacy else bool(isinstance(v, dict) and v.get("ok"))
                                 for k, v in th.items()}

    def metric(n: str) -> dict:
        m = metrics.get(n)
        if m is None:
            return {}
        m = j.obj(m, f"metrics.{n}")
        if legacy:
            return m
        return j.obj(m.get("values", {}), f"metrics.{n}.values")

    reqs = metric("http_reqs")
    requests = _maybe_int(reqs.get("count"))
    achieved = _maybe_float(reqs.get("rate"))
    failed = metric("http_req_failed")
    errors = _maybe_int(failed.get("passes"))
    vus = metric("vus_max")
    conns = _maybe_int(vus.get("max", vus.get("value")))
    state = doc.get("state") if isinstance(doc.get("state"), dict) else {}
    dur_ms = _maybe_float(state.get("testRunDurationMs"))
    return Result(tool="k6", percentiles=percentiles, requests=requests, errors=errors, connections=conns,
                  duration_s=None if dur_ms is None else dur_ms / 1e3, achieved_rate=achieved,
                  corrected=False, source=source, meta=meta)


def _maybe_int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return int(v)


# -- oha ---------------------------------------------------------------------------------------

_OHA_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "sec": 1e3, "secs": 1e3, "s": 1e3,
              "10 sec": 1e4, "min": 6e4, "10 min": 6e5, "hr": 3.6e6}
_OHA_UNIT_RE = r"(10 sec|10 min|secs|sec|min|hr|ns|us|µs|ms|s)"


def parse_oha(text: str, source: str | None = None) -> Result:
    """oha's JSON (``-j``/``--output-format json``) or text report."""
    if re.match(r"^\s*\{", text):
        return _parse_oha_json(text, source)
    return _parse_oha_text(text, source)


def _parse_oha_json(text: str, source: str | None) -> Result:
    doc = _json_doc("oha", text, source, ("summary", "latencyPercentiles"))
    j = _J("oha", source)
    doc = j.obj(doc, "(top level)")
    summ = j.get(doc, "summary", "", "object")
    lp = j.get(doc, "latencyPercentiles", "", "object")
    percentiles: dict[float, float] = {}
    for key, v in lp.items():
        m = re.fullmatch(rf"p({_NUM})", key)
        if not m:
            raise j.fail(f"latencyPercentiles.{key}", "expected a key like 'p99.9'")
        if v is None:
            continue      # oha writes null (NaN) when there were no successful requests
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise j.fail(f"latencyPercentiles.{key}", f"expected seconds, got {v!r}"[:120])
        percentiles[_num(m.group(1))] = float(v) * 1e3
    slowest = j.get(summ, "slowest", "summary", required=False)
    if slowest is not None:
        percentiles[100.0] = float(slowest) * 1e3
    if not percentiles:
        raise j.fail("latencyPercentiles", "no latencies (did every request fail?)")
    status = j.counts(doc["statusCodeDistribution"], "statusCodeDistribution") \
        if isinstance(doc.get("statusCodeDistribution"), dict) else {}
    errs = j.counts(doc["errorDistribution"], "errorDistribution") \
        if isinstance(doc.get("errorDistribution"), dict) else {}
    coarse = []
    if isinstance(doc.get("responseTimeHistogram"), dict):
        for k, v in j.counts(doc["responseTimeHistogram"], "responseTimeHistogram").items():
            try:
                coarse.append((_num(k) * 1e3, v))
            except ValueError:
                raise j.fail(f"responseTimeHistogram.{k}", "expected seconds as the key") from None
    meta = {"mean_ms": _maybe_ms(summ.get("average")), "min_ms": _maybe_ms(summ.get("fastest")),
            "success_rate": _maybe_float(summ.get("successRate")), "status_codes": status,
            "error_distribution": errs, "coarse_histogram": sorted(coarse)}
    total = _maybe_float(summ.get("total"))
    return Result(tool="oha", percentiles=percentiles, requests=sum(status.values()) + sum(errs.values()),
                  errors=sum(v for k, v in status.items() if not k.startswith(("2", "3"))) + sum(errs.values()),
                  duration_s=total, achieved_rate=_maybe_float(summ.get("requestsPerSec")),
                  mode="closed", corrected=False, source=source, meta=meta)


def _sections(tool: str, text: str, known: dict[str, str], source: str | None
              ) -> dict[str, list[tuple[int, str]]]:
    """Split a report into ``Heading:`` sections of indented lines (unknown headings skipped)."""
    out: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for lineno, raw in _lines(text):
        if not raw.strip():
            continue
        if not raw[0].isspace():
            head = raw.strip()
            current = known.get(head)
            if current is not None:
                if current in out:
                    raise ParseError(tool, f"section {head!r} appears twice", lineno, source)
                out[current] = []
            continue
        if current is not None:
            out[current].append((lineno, raw))
    return out


def _parse_oha_text(text: str, source: str | None) -> Result:
    secs = _sections("oha", text, {"Summary:": "summary", "Response time histogram:": "hist",
                                   "Response time distribution:": "dist", "Status code distribution:": "status",
                                   "Error distribution:": "errors",
                                   "Details (average, fastest, slowest):": "details"}, source)
    if "dist" not in secs:
        raise ParseError("oha", "no 'Response time distribution:' section", source=source)
    meta: dict[str, Any] = {}
    summary: dict[str, float] = {}
    for lineno, raw in secs.get("summary", []):
        s = raw.strip()
        if m := re.match(rf"^(Total|Slowest|Fastest|Average):\s+({_NUM}|NaN)\s+{_OHA_UNIT_RE}$", s):
            if m.group(2) != "NaN":
                summary[m.group(1)] = _num(m.group(2)) * _OHA_UNITS[m.group(3)]
        elif m := re.match(rf"^Requests/sec:\s+({_NUM}|NaN)$", s):
            if m.group(1) != "NaN":
                summary["rps"] = _num(m.group(1))
        elif m := re.match(rf"^Success rate:\s+({_NUM})(%?)$", s):
            v = _num(m.group(1))
            meta["success_rate"] = v / 100 if m.group(2) else v
        elif re.match(r"^(Total data|Size/request|Size/sec):", s):
            continue
        else:
            raise ParseError("oha", f"unexpected summary line {s[:60]!r}", lineno, source)
    percentiles: dict[float, float] = {}
    for lineno, raw in secs["dist"]:
        s = raw.strip()
        m = re.match(rf"^({_NUM})% in ({_NUM}|NaN) {_OHA_UNIT_RE}$", s)
        if not m:
            raise ParseError("oha", f"expected a line like '99.00% in 0.2898 secs', got {s[:60]!r}", lineno, source)
        if m.group(2) != "NaN":
            p = _num(m.group(1))
            if p > 100:
                raise ParseError("oha", f"percentile {p} above 100", lineno, source)
            percentiles[p] = _num(m.group(2)) * _OHA_UNITS[m.group(3)]
    coarse = []
    for lineno, raw in secs.get("hist", []):
        m = re.match(rf"^\s*({_NUM})(?:\s+{_OHA_UNIT_RE})?\s+\[(\d+)\]\s*\|", raw)
        if not m:
            raise ParseError("oha", f"cannot read histogram line {raw.strip()[:60]!r}", lineno, source)
        unit = _OHA_UNITS[m.group(2)] if m.group(2) else 1e3
        coarse.append((_num(m.group(1)) * unit, int(m.group(3))))
    status = _status_lines("oha", secs.get("status", []), source)
    errs = _error_lines("oha", secs.get("errors", []), source)
    if "Slowest" in summary:
        percentiles[100.0] = summary["Slowest"]
    if not percentiles:
        raise ParseError("oha", "no latencies in the report (did every request fail?)", source=source)
    meta.update(mean_ms=summary.get("Average"), min_ms=summary.get("Fastest"), status_codes=status,
                error_distribution=errs, coarse_histogram=coarse)
    total = summary.get("Total")
    return Result(tool="oha", percentiles=percentiles, requests=sum(status.values()) + sum(errs.values()),
                  errors=sum(v for k, v in status.items() if not k.startswith(("2", "3"))) + sum(errs.values()),
                  duration_s=None if total is None else total / 1e3, achieved_rate=summary.get("rps"),
                  mode="closed", corrected=False, source=source, meta=meta)


def _status_lines(tool: str, lines: list[tuple[int, str]], source: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for lineno, raw in lines:
        m = re.match(r"^\s*\[(\d{3})\]\s+(\d+) responses\s*$", raw)
        if not m:
            raise ParseError(tool, f"expected a line like '[200] 1000 responses', got {raw.strip()[:60]!r}",
                             lineno, source)
        out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def _error_lines(tool: str, lines: list[tuple[int, str]], source: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for lineno, raw in lines:
        m = re.match(r"^\s*\[(\d+)\]\s+(.*)$", raw)
        if not m:
            raise ParseError(tool, f"expected a line like '[3] connection refused', got {raw.strip()[:60]!r}",
                             lineno, source)
        out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1))
    return out


# -- hey ---------------------------------------------------------------------------------------

def parse_hey(text: str, source: str | None = None) -> Result:
    """hey's text report (seconds)."""
    secs = _sections("hey", text, {"Summary:": "summary", "Response time histogram:": "hist",
                                   "Latency distribution:": "dist", "Status code distribution:": "status",
                                   "Error distribution:": "errors",
                                   "Details (average, fastest, slowest):": "details"}, source)
    if "dist" not in secs:
        raise ParseError("hey", "no 'Latency distribution:' section", source=source)
    summary: dict[str, float] = {}
    for lineno, raw in secs.get("summary", []):
        s = raw.strip()
        if m := re.match(rf"^(Total|Slowest|Fastest|Average):\s+({_NUM}) secs$", s):
            summary[m.group(1)] = _num(m.group(2)) * 1e3
        elif m := re.match(rf"^Requests/sec:\s+({_NUM})$", s):
            summary["rps"] = _num(m.group(1))
        elif re.match(r"^(Total data|Size/request):\s+\d+ bytes$", s):
            continue
        else:
            raise ParseError("hey", f"unexpected summary line {s[:60]!r}", lineno, source)
    percentiles: dict[float, float] = {}
    for lineno, raw in secs["dist"]:
        m = re.match(rf"^\s*(\d+)%{{1,2}} in ({_NUM}) secs\s*$", raw)
        if not m:
            raise ParseError("hey", f"expected a line like '99% in 0.0123 secs', got {raw.strip()[:60]!r}",
                             lineno, source)
        p = float(m.group(1))
        if p > 100:
            raise ParseError("hey", f"percentile {p:g} above 100", lineno, source)
        percentiles[p] = _num(m.group(2)) * 1e3
    coarse = []
    for lineno, raw in secs.get("hist", []):
        m = re.match(rf"^\s*({_NUM}) \[(\d+)\]\s*\|", raw)
        if not m:
            raise ParseError("hey", f"cannot read histogram line {raw.strip()[:60]!r}", lineno, source)
        coarse.append((_num(m.group(1)) * 1e3, int(m.group(2))))
    status = _status_lines("hey", secs.get("status", []), source)
    errs = _error_lines("hey", secs.get("errors", []), source)
    if "Slowest" in summary:
        percentiles[100.0] = summary["Slowest"]
    if not percentiles:
        raise ParseError("hey", "no latencies in the report", source=source)
    total = summary.get("Total")
    meta = {"mean_ms": summary.get("Average"), "min_ms": summary.get("Fastest"), "status_codes": status,
            "error_distribution": errs, "coarse_histogram": coarse}
    return Result(tool="hey", percentiles=percentiles, requests=sum(status.values()) + sum(errs.values()),
                  errors=sum(v for k, v in status.items() if not k.startswith(("2", "3"))) + sum(errs.values()),
                  duration_s=None if total is None else total / 1e3, achieved_rate=summary.get("rps"),
                  mode="closed", corrected=False, source=source, meta=meta)


_PARSERS: dict[str, Callable[[str, str | None], Result]] = {
    "wrk2": parse_wrk, "wrk": parse_wrk, "fortio": parse_fortio, "k6": parse_k6, "oha": parse_oha,
    "hey": parse_hey, "hdrhistogram": parse_hgrm,
}
