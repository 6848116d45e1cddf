"""A small PromQL: the query shapes canary analysis uses, answered from gwlib's series.

Supported (Prometheus semantics): vector selectors with ``= != =~ !~`` matchers (regexes
fully anchored), range selectors inside ``rate``, ``irate``, ``increase``; the
aggregations ``sum avg min max count`` with ``by (...)`` / ``without (...)`` before or after
the argument; ``histogram_quantile(φ, ...)`` (linear interpolation inside the bucket, the
highest finite bound when the rank falls in ``+Inf``, NaN without observations);
``vector(s)``, ``scalar(v)``, ``abs``, ``clamp_min``, ``clamp_max``; arithmetic
``+ - * / % ^`` between scalars and vectors (one-to-one matching on all labels, or
``on(...)`` / ``ignoring(...)``); comparisons (filters, or ``bool``); ``and``, ``or``,
``unless``. ``0/0`` is NaN, as in Prometheus, and an aggregation over no series is an
empty vector.

Not supported, and said so (:class:`UnsupportedQuery`): metric names gwlib does not
record, ``offset``, ``@``, subqueries, ``group_left``/``group_right`` and other functions.

A query answers an instant vector (``[{labels}, value]`` pairs, sorted by labels) or a scalar;
:func:`argo_result` turns that into what Argo Rollouts hands to a condition: a list of
floats for a vector (``result[0]``), a float for a scalar.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .duration import DurationError, parse_go_duration
from .tokens import Cursor, Token, lex
from .series import METRIC_NAMES, SeriesStore

__all__ = ["PromQLError", "UnsupportedQuery", "parse", "check", "evaluate", "argo_result", "metric_names"]


class PromQLError(ValueError):
    """The query does not parse."""


class UnsupportedQuery(PromQLError):
    """The query parses but asks for something gwlib cannot answer."""


AGGREGATIONS = ("sum", "avg", "min", "max", "count")
RANGE_FUNCS = ("rate", "irate", "increase")
FUNCS = RANGE_FUNCS + ("histogram_quantile", "vector", "scalar", "abs", "clamp_min", "clamp_max")
KNOWN_UNSUPPORTED = ("stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
                     "delta", "idelta", "deriv", "predict_linear", "avg_over_time", "sum_over_time",
                     "max_over_time", "min_over_time", "count_over_time", "quantile_over_time",
                     "label_replace", "label_join", "absent", "absent_over_time", "time", "timestamp",
                     "round", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sort", "sort_desc",
                     "histogram_count", "histogram_sum", "histogram_fraction", "resets", "changes")

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<dur>\[\s*[0-9a-zA-Z.]+\s*(?::\s*[0-9a-zA-Z.]*\s*)?\])
  | (?P<bdur>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![A-Za-z_:0-9]))
  | (?P<num>(?:0x[0-9a-fA-F]+|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?|[Ii]nf|NaN)(?![A-Za-z_:0-9]))
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^(){},=<>@])
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
""", re.VERBOSE)


def _token(kind: str, val: str) -> tuple[str, Any] | None:
    if kind == "num":
        return "num", float(int(val, 16)) if val.lower().startswith("0x") else float(val)
    if kind == "str":
        return "str", val[1:-1] if val[0] == "`" else re.sub(r"\\(.)", r"\1", val[1:-1])
    if kind == "dur":
        return "dur", val[1:-1].strip()
    return None if kind == "ws" else (kind, val)   # whitespace and comments are skipped


def _lex(text: str) -> list[Token]:
    return lex(text, _TOKEN, _token, lambda pos: PromQLError(f"unexpected character {text[pos]!r} at position {pos + 1}"))


# AST nodes -------------------------------------------------------------------------------

@dataclass
class Num:
    value: float


@dataclass
class Str:
    value: str


@dataclass
class Selector:
    name: str | None
    matchers: list[tuple[str, str, str]]   # (label, op, value)
    window: float | None = None            # seconds, for range selectors
    window_text: str = ""


@dataclass
class Call:
    func: str
    args: list


@dataclass
class Agg:
    op: str
    expr: Any
    by: list[str] | None = None
    without: list[str] | None = None


@dataclass
class Unary:
    op: str
    expr: Any


@dataclass
class Bin:
    op: str
    lhs: Any
    rhs: Any
    bool_mode: bool = False
    on: list[str] | None = None
    ignoring: list[str] | None = None


_PREC = [("or",), ("and", "unless"), ("==", "!=", ">", "<", ">=", "<="), ("+", "-"), ("*", "/", "%")]


class _Parser(Cursor):
    def __init__(self, text: str):
        super().__init__(text, _lex(text))

    def is_(self, kind: str, value: Any = None, k: int = 0) -> bool:
        t = self.peek(k)
        return t[0] == kind and (value is None or t[1] == value)

    def expect(self, kind: str, value: Any = None):
        t = self.take()
        if t[0] != kind or (value is not None and t[1] != value):
            what = value if value is not None else kind
            got = "end of query" if t[0] == "end" else repr(t[1])
            raise PromQLError(f"expected {what!r} at position {t[2] + 1}, found {got}")
        return t

    def parse(self):
        node = self.expr(0)
        t = self.peek()
        if t[0] != "end":
            raise PromQLError(f"unexpected {t[1]!r} at position {t[2] + 1}")
        return node

    def expr(self, level: int):
        if level == len(_PREC):
            return self.power()
        lhs = self.expr(level + 1)
        while True:
            t = self.peek()
            op = t[1] if t[0] in ("op", "name") and t[1] in _PREC[level] else None
            if op is None:
                return lhs
            self.i += 1
            bool_mode = False
            if self.is_("name", "bool"):
                self.i += 1
                bool_mode = True
            on = ignoring = None
            if self.is_("name", "on") or self.is_("name", "ignoring"):
                which = self.take()[1]
                labels = self.label_list()
                if which == "on":
                    on = labels
                else:
                    ignoring = labels
                if self.is_("name", "group_left") or self.is_("name", "group_right"):
                    raise UnsupportedQuery(f"{self.peek()[1]} (many-to-one matching) is not supported")
            rhs = self.expr(level + 1)
            lhs = Bin(op, lhs, rhs, bool_mode, on, ignoring)

    def power(self):
        base = self.unary()
        if self.is_("op", "^"):
            self.i += 1
            return Bin("^", base, self.power())
        return base

    def unary(self):
        if self.is_("op", "-") or self.is_("op", "+"):
            op = self.take()[1]
            return Unary(op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node):
        while True:
            if self.is_("dur"):
                t = self.take()
                if ":" in t[1]:
                    raise UnsupportedQuery(f"subqueries ([{t[1]}]) are not supported")
                if not isinstance(node, Selector) or node.window is not None:
                    raise PromQLError(f"a range [{t[1]}] must follow a metric selector (position {t[2] + 1})")
                try:
                    node.window = parse_go_duration(_prom_duration(t[1]))
                except DurationError:
                    raise PromQLError(f"bad duration [{t[1]}]") from None
                node.window_text = t[1]
            elif self.is_("name", "offset"):
                raise UnsupportedQuery("offset is not supported")
            elif self.is_("op", "@"):
                raise UnsupportedQuery("the @ modifier is not supported")
            else:
                return node

    def label_list(self) -> list[str]:
        self.expect("op", "(")
        out = []
        if self.is_("op", ")"):
            self.i += 1
            return out
        while True:
            out.append(self.expect("name")[1])
            if self.is_("op", ")"):
                self.i += 1
                return out
            self.expect("op", ",")

    def matchers(self) -> list[tuple[str, str, str]]:
        self.expect("op", "{")
        out = []
        while not self.is_("op", "}"):
            label = self.expect("name")[1]
            t = self.take()
            if t[0] != "op" or t[1] not in ("=", "!=", "=~", "!~"):
                raise PromQLError(f"expected a label matcher operator after {label!r} at position {t[2] + 1}")
            value = self.expect("str")[1]
            if t[1] in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise PromQLError(f"bad regex {value!r} for label {label}: {exc}") from None
            out.append((label, t[1], value))
            if self.is_("op", ","):
                self.i += 1
        self.expect("op", "}")
        return out

    def primary(self):
        t = self.peek()
        if t[0] == "num":
            self.i += 1
            return Num(t[1])
        if t[0] == "str":
            self.i += 1
            return Str(t[1])
        if t[0] == "op" and t[1] == "(":
            self.i += 1
            node = self.expr(0)
            self.expect("op", ")")
            return node
        if t[0] == "op" and t[1] == "{":
            m = self.matchers()
            names = [v for (lab, op, v) in m if lab == "__name__" and op == "="]
            return Selector(names[0] if names else None, [x for x in m if x[0] != "__name__" or x[1] != "="])
        if t[0] == "name":
            name = t[1]
            self.i += 1
            if name in AGGREGATIONS:
                return self.aggregation(name)
            if self.is_("op", "("):
                if name in KNOWN_UNSUPPORTED or name in ("by", "without"):
                    raise UnsupportedQuery(f"the function {name}() is not supported by gwlib's lab Prometheus")
                if name not in FUNCS:
                    raise UnsupportedQuery(f"unknown function {name}()")
                self.i += 1
                args = []
                if not self.is_("op", ")"):
                    while True:
                        args.append(self.expr(0))
                        if self.is_("op", ")"):
                            break
                        self.expect("op", ",")
                self.expect("op", ")")
                return Call(name, args)
            matchers = self.matchers() if self.is_("op", "{") else []
            return Selector(name, matchers)
        got = "end of query" if t[0] == "end" else repr(t[1])
        raise PromQLError(f"unexpected {got} at position {t[2] + 1}")

    def aggregation(self, op: str):
        by = without = None
        if self.is_("name", "by") or self.is_("name", "without"):
            which = self.take()[1]
            labels = self.label_list()
            by, without = (labels, None) if which == "by" else (None, labels)
        self.expect("op", "(")
        expr = self.expr(0)
        if self.is_("op", ","):
            raise UnsupportedQuery(f"{op} with a parameter is not supported")
        self.expect("op", ")")
        if self.is_("name", "by") or self.is_("name", "without"):
            which = self.take()[1]
            labels = self.label_list()
            by, without = (labels, None) if which == "by" else (None, labels)
        return Agg(op, expr, by, without)


def _prom_duration(text: str) -> str:
    """Prometheus durations (``1m``, ``90s``, ``1h30m``, ``1d``, ``1w``) as Go durations."""
    m = re.fullmatch(r"(\d+)([dwy])", text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return f"{n * {'d': 24, 'w': 168, 'y': 8760}[unit]}h"
    return text


@functools.lru_cache(maxsize=500)
def parse(query: str):
    """The AST of a query (cached); raises :class:`PromQLError` / :class:`UnsupportedQuery`."""
    return _Parser(query).parse()


def _walk(node):
    yield node
    if isinstance(node, (Call,)):
        for a in node.args:
            yield from _walk(a)
    elif isinstance(node, Agg):
        yield from _walk(node.expr)
    elif isinstance(node, Unary):
        yield from _walk(node.expr)
    elif isinstance(node, Bin):
        yield from _walk(node.lhs)
        yield from _walk(node.rhs)


def metric_names(query: str) -> list[str]:
    """The metric names a query selects, in order."""
    return [n.name for n in _walk(parse(query)) if isinstance(n, Selector) and n.name]


def check(query: str, known: tuple[str, ...] = METRIC_NAMES) -> None:
    """Raise :class:`UnsupportedQuery` unless gwlib can answer the query."""
    root = parse(query)
    for node in _walk(root):
        if isinstance(node, Selector):
            if node.name is None:
                raise UnsupportedQuery("a selector without a metric name is not supported")
            if node.name not in known:
                raise UnsupportedQuery(
                    f"gwlib records no series named {node.name!r}: it records Linkerd's proxy metrics "
                    f"({', '.join(known)})")
        if isinstance(node, Call):
            _check_call(node)
    _check_ranges(root, inside_range_func=False)


def _check_call(node: Call) -> None:
    n = len(node.args)
    want = {"rate": 1, "irate": 1, "increase": 1, "histogram_quantile": 2, "vector": 1, "scalar": 1,
            "abs": 1, "clamp_min": 2, "clamp_max": 2}[node.func]
    if n != want:
        raise PromQLError(f"{node.func}() takes {want} argument(s), got {n}")
    if node.func in RANGE_FUNCS and not (isinstance(node.args[0], Selector) and node.args[0].window):
        raise PromQLError(f"{node.func}() needs a range vector such as metric[1m]")


def _check_ranges(node, inside_range_func: bool) -> None:
    if isinstance(node, Selector):
        if node.window is not None and not inside_range_func:
            raise PromQLError(f"a range vector ({node.name}[{node.window_text}]) cannot be the result of an "
                              "expression: wrap it in rate(), irate() or increase()")
        return
    if isinstance(node, Call):
        for a in node.args:
            _check_ranges(a, node.func in RANGE_FUNCS)
    elif isinstance(node, Agg):
        _check_ranges(node.expr, False)
    elif isinstance(node, Unary):
        _check_ranges(node.expr, False)
    elif isinstance(node, Bin):
        _check_ranges(node.lhs, False)
        _check_ranges(node.rhs, False)


# ------------------------------------------------------------------------------ evaluation

Vector = list  # [(labels dict, value)]


def _matcher(matchers: list[tuple[str, str, str]]) -> Callable[[tuple], bool]:
    compiled = []
    for label, op, value in matchers:
        rx = re.compile(value) if op in ("=~", "!~") else None
        compiled.append((label, op, value, rx))

    def ok(labels: tuple) -> bool:
        d = dict(labels)
        for label, op, value, rx in compiled:
            have = d.get(label, "")
            if op == "=" and have != value or op == "!=" and have == value:
                return False
            if op == "=~" and not rx.fullmatch(have) or op == "!~" and rx.fullmatch(have):
                return False
        return True
    return ok


def _drop_name(labels: tuple) -> dict:
    return {k: v for k, v in labels if k != "__name__"}


def _key(d: dict) -> tuple:
    return tuple(sorted(d.items()))


class _Evaluator:
    def __init__(self, store: SeriesStore, t: float):
        self.store = store
        self.t = t

    def run(self, node):
        if isinstance(node, Num):
            return ("scalar", node.value)
        if isinstance(node, Str):
            raise UnsupportedQuery("a string cannot be the value of a query")
        if isinstance(node, Selector):
            if node.window is not None:
                raise PromQLError("a range vector must be inside rate(), irate() or increase()")
            # an instant counter read: its total since the start
            vals = self.store.increase(node.name, _matcher(node.matchers), -math.inf, self.t)
            return ("vector", [(dict(lab), v) for lab, v in sorted(vals.items())])
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Agg):
            return self.aggregate(node)
        if isinstance(node, Unary):
            kind, val = self.run(node.expr)
            if node.op == "+":
                return (kind, val)
            if kind == "scalar":
                return ("scalar", -val)
            return ("vector", [(_drop(lab), -v) for lab, v in val])
        if isinstance(node, Bin):
            return self.binary(node)
        raise PromQLError(f"cannot evaluate {node!r}")  # pragma: no cover

    def call(self, node: Call):
        f = node.func
        if f in RANGE_FUNCS:
            sel = node.args[0]
            vals = self.store.increase(sel.name, _matcher(sel.matchers), self.t - sel.window, self.t)
            div = 1.0 if f == "increase" else sel.window
            return ("vector", [(_drop_name(lab), v / div) for lab, v in sorted(vals.items())])
        if f == "histogram_quantile":
            kind, q = self.run(node.args[0])
            if kind != "scalar":
                raise PromQLError("histogram_quantile() needs a number as its first argument")
            kind, vec = self.run(node.args[1])
            if kind != "vector":
                raise PromQLError("histogram_quantile() needs a vector of buckets")
            return ("vector", _histogram_quantile(q, vec))
        if f == "vector":
            kind, v = self.run(node.args[0])
            if kind != "scalar":
                raise PromQLError("vector() needs a number")
            return ("vector", [({}, v)])
        if f == "scalar":
            kind, vec = self.run(node.args[0])
            if kind == "scalar":
                return (kind, vec)
            return ("scalar", vec[0][1] if len(vec) == 1 else math.nan)
        kind, vec = self.run(node.args[0])
        if kind != "vector":
            raise PromQLError(f"{f}() needs a vector")
        if f == "abs":
            return ("vector", [(_drop(lab), abs(v)) for lab, v in vec])
        k2, bound = self.run(node.args[1])
        if k2 != "scalar":
            raise PromQLError(f"{f}() needs a number as its second argument")
        fn = max if f == "clamp_min" else min
        return ("vector", [(_drop(lab), fn(v, bound)) for lab, v in vec])

    def aggregate(self, node: Agg):
        kind, vec = self.run(node.expr)
        if kind != "vector":
            raise PromQLError(f"{node.op}() needs a vector")
        groups: dict[tuple, list[float]] = {}
        for lab, v in vec:
            lab = _drop(lab)
            if node.by is not None:
                g = {k: lab[k] for k in node.by if k in lab}
            elif node.without is not None:
                g = {k: x for k, x in lab.items() if k not in node.without}
            else:
                g = {}
            groups.setdefault(_key(g), []).append(v)
        out = []
        for g, vs in sorted(groups.items()):
            if node.op == "sum":
                r = math.fsum(vs)
            elif node.op == "avg":
                r = math.fsum(vs) / len(vs)
            elif node.op == "min":
                r = min(vs)
            elif node.op == "max":
                r = max(vs)
            else:
                r = float(len(vs))
            out.append((dict(g), r))
        return ("vector", out)

    def binary(self, node: Bin):
        lk, lv = self.run(node.lhs)
        rk, rv = self.run(node.rhs)
        op = node.op
        if op in ("and", "or", "unless"):
            if lk != "vector" or rk != "vector":
                raise PromQLError(f"{op} needs vectors on both sides")
            sig = _signature(node)
            right = {sig(lab) for lab, _ in rv}
            if op == "and":
                return ("vector", [(lab, v) for lab, v in lv if sig(lab) in right])
            if op == "unless":
                return ("vector", [(lab, v) for lab, v in lv if sig(lab) not in right])
            left = {sig(lab) for lab, _ in lv}
            return ("vector", list(lv) + [(lab, v) for lab, v in rv if sig(lab) not in left])
        if lk == "scalar" and rk == "scalar":
            r = _apply(op, lv, rv)
            if op in _CMP:
                if not node.bool_mode:
                    raise PromQLError("comparisons between scalars must use the bool modifier")
                return ("scalar", 1.0 if r else 0.0)
            return ("scalar", r)
        if lk == "vector" and rk == "scalar" or lk == "scalar" and rk == "vector":
            vec, sc, vec_left = (lv, rv, True) if lk == "vector" else (rv, lv, False)
            out = []
            for lab, v in vec:
                r = _apply(op, v, sc) if vec_left else _apply(op, sc, v)
                if op in _CMP:
                    if node.bool_mode:
                        out.append((_drop(lab), 1.0 if r else 0.0))
                    elif r:
                        out.append((lab, v))
                else:
                    out.append((_drop(lab), r))
            return ("vector", out)
        sig = _signature(node)
        right: dict[tuple, tuple[dict, float]] = {}
        for lab, v in rv:
            k = sig(lab)
            if k in right:
                raise PromQLError("many-to-many matching not allowed: the right side has duplicate series "
                                  f"for {dict(k)}; aggregate first (e.g. sum(...))")
            right[k] = (lab, v)
        out = []
        seen: set = set()
        for lab, v in lv:
            k = sig(lab)
            if k not in right:
                continue
            if k in seen:
                raise PromQLError("many-to-many matching not allowed: the left side has duplicate series "
                                  f"for {dict(k)}; aggregate first (e.g. sum(...))")
            seen.add(k)
            r = _apply(op, v, right[k][1])
            if op in _CMP:
                if node.bool_mode:
                    out.append((_result_labels(node, lab), 1.0 if r else 0.0))
                elif r:
                    out.append((lab, v))
            else:
                out.append((_result_labels(node, lab), r))
        return ("vector", out)


_CMP = ("==", "!=", ">", "<", ">=", "<=")


def _drop(lab: dict) -> dict:
    return {k: v for k, v in lab.items() if k != "__name__"}


def _signature(node: Bin) -> Callable[[dict], tuple]:
    if node.on is not None:
        return lambda lab: tuple((k, lab.get(k, "")) for k in sorted(node.on))
    ign = set(node.ignoring or ()) | {"__name__"}
    return lambda lab: tuple(sorted((k, v) for k, v in lab.items() if k not in ign))


def _result_labels(node: Bin, lab: dict) -> dict:
    if node.on is not None:
        return {k: lab[k] for k in node.on if k in lab}
    return {k: v for k, v in lab.items() if k != "__name__" and k not in (node.ignoring or ())}


def _apply(op: str, a: float, b: float):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
        return a / b
    if op == "%":
        return math.fmod(a, b) if b != 0 else math.nan
    if op == "^":
        try:
            return a ** b
        except (OverflowError, ZeroDivisionError):
            return math.inf
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == ">=":
        return a >= b
    return a <= b


def _histogram_quantile(q: float, vec: Vector) -> Vector:
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for lab, v in vec:
        if "le" not in lab:
            continue
        le = lab["le"]
        bound = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
        g = _key({k: x for k, x in lab.items() if k not in ("le", "__name__")})
        groups.setdefault(g, []).append((bound, v))
    out = []
    for g, buckets in sorted(groups.items()):
        out.append((dict(g), _bucket_quantile(q, buckets)))
    return out


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's bucketQuantile (promql/quantile.go), for cumulative bucket counts."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    # counts must be monotonic (they may not be, with rates of floats): fix as Prometheus does
    fixed, top = [], 0.0
    for b, c in buckets:
        top = max(top, c)
        fixed.append((b, top))
    buckets = fixed
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    i = next(k for k, (_, c) in enumerate(buckets) if c >= rank)
    if i == len(buckets) - 1:
        return buckets[-2][0]
    if i == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end = 0.0, buckets[i][0]
    count = buckets[i][1]
    if i > 0:
        start = buckets[i - 1][0]
        count -= buckets[i - 1][1]
        rank -= buckets[i - 1][1]
    if count == 0:
        return start
    return start + (end - start) * (rank / count)


def evaluate(query: str, store: SeriesStore, t: float):
    """Evaluate at simulated time ``t``: ``("vector", [(labels, value)])`` or ``("scalar", v)``."""
    check(query)
    return _Evaluator(store, t).run(parse(query))


def argo_result(answer) -> Any:
    """What Argo's Prometheus provider puts into ``result``: a list of floats for a vector,
    a float for a scalar."""
    kind, value = answer
    if kind == "scalar":
        return float(value)
    return [float(v) for _, v in value]
