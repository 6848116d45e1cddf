"""The expression language of ``successCondition`` / ``failureCondition``.

Argo Rollouts evaluates conditions with expr-lang (github.com/expr-lang/expr) over an
environment holding ``result`` (the measurement) and a few helpers
(``utils/evaluate/evaluate.go``): ``asInt``, ``asFloat``, ``isNaN``, ``isInf``,
``isNil``, ``default``. This module implements the part of the language analysis
conditions use, with expr's semantics:

* literals (numbers, ``'str'``/``"str"``, ``true``, ``false``, ``nil``), arrays ``[1, 2]``;
* ``result[0]``, negative indexes, ``result.field`` (maps, for the Web provider);
* ``not``/``!``, ``and``/``&&``, ``or``/``||`` (lazy: ``len(result) > 0 && result[0] > 1``
  never indexes an empty result), ``== != < <= > >=``, ``in``, ``not in``, ``+ - * / % **``,
  ``cond ? a : b``, ``a ?? b``, ``contains``, ``startsWith``, ``endsWith``, ``matches``;
* builtins ``len abs max min sum mean median int float string first last`` and the
  predicates ``all any none one filter map count`` (``all(result, # < 0.5)`` or with braces
  ``all(result, {# < 0.5})``).

Type errors are errors, as in expr: ``result >= 0.95`` when ``result`` is a vector
(``[]float64``) fails with *invalid operation: []float64 >= float64* — the measurement is
then an **Error**, not a failure. Comparisons with NaN are false.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .tokens import Cursor, Token, lex

__all__ = ["ExprError", "evaluate", "evaluate_condition", "go_type", "argo_env"]


class ExprError(ValueError):
    """The expression does not parse, or fails while it runs."""


# ------------------------------------------------------------------------------ lexer

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>\*\*|==|!=|<=|>=|&&|\|\||\?\?|\.\.|[-+*/%<>!()\[\],.?:{}\#^])
  | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
""", re.VERBOSE)

_WORD_OPS = {"and", "or", "not", "in", "contains", "startsWith", "endsWith", "matches"}


def _token(kind: str, value: str) -> tuple[str, Any] | None:
    if kind == "num":
        return "num", float(value) if any(c in value for c in ".eE") else int(value)
    if kind == "str":
        return "str", re.sub(r"\\(.)", lambda mm: {"n": "\n", "t": "\t"}.get(mm.group(1), mm.group(1)), value[1:-1])
    if kind == "name":
        return ("op" if value in _WORD_OPS else "name"), value
    if kind == "op":
        return "op", value
    return None   # whitespace


def _lex(text: str) -> list[Token]:
    return lex(text, _TOKEN, _token,
               lambda pos: ExprError(f"unexpected character {text[pos]!r} at position {pos + 1} in {text!r}"))


# ----------------------------------------------------------------------------- parser
# The AST is nested tuples: ("lit", v) ("name", n) ("pointer",) ("unary", op, x)
# ("bin", op, a, b) ("cond", c, a, b) ("index", x, i) ("member", x, name) ("call", f, args)
# ("array", items) ("closure", body)

_BINARY = [  # lowest precedence first
    ("??",),
    ("or", "||"),
    ("and", "&&"),
    ("==", "!=", "<", ">", "<=", ">=", "in", "not in", "contains", "startsWith", "endsWith", "matches"),
    ("+", "-"),
    ("*", "/", "%"),
]


class _Parser(Cursor):
    def __init__(self, text: str):
        super().__init__(text, _lex(text))

    def accept(self, *ops: str) -> str | None:
        kind, value, _ = self.peek()
        if kind == "op" and value in ops:
            self.i += 1
            return value
        return None

    def expect(self, op: str) -> None:
        kind, value, pos = self.peek()
        if kind != "op" or value != op:
            raise ExprError(f"expected {op!r} at position {pos + 1} in {self.text!r}")
        self.i += 1

    def parse(self):
        node = self.ternary()
        kind, value, pos = self.peek()
        if kind != "end":
            raise ExprError(f"unexpected token {value!r} at position {pos + 1} in {self.text!r}")
        return node

    def ternary(self):
        cond = self.binary(0)
        if self.accept("?"):
            a = self.ternary()
            self.expect(":")
            b = self.ternary()
            return ("cond", cond, a, b)
        return cond

    def binary(self, level: int):
        if level == len(_BINARY):
            return self.power()
        left = self.binary(level + 1)
        while True:
            kind, value, _ = self.peek()
            op = None
            if kind == "op" and value == "not" and self.peek(1)[0] == "op" and self.peek(1)[1] == "in" \
                    and "not in" in _BINARY[level]:
                self.i += 2
                op = "not in"
            elif kind == "op" and value in _BINARY[level]:
                self.i += 1
                op = value
            if op is None:
                return left
            right = self.binary(level + 1)
            left = ("bin", {"||": "or", "&&": "and"}.get(op, op), left, right)

    def power(self):
        base = self.unary()
        if self.accept("**", "^"):
            return ("bin", "**", base, self.power())
        return base

    def unary(self):
        op = self.accept("not", "!", "-", "+")
        if op:
            return ("unary", "not" if op in ("not", "!") else op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node):
        while True:
            if self.accept("."):
                kind, value, pos = self.take()
                if kind != "name":
                    raise ExprError(f"expected a field name at position {pos + 1} in {self.text!r}")
                node = ("member", node, value)
            elif self.accept("["):
                idx = self.ternary()
                self.expect("]")
                node = ("index", node, idx)
            elif self.peek()[0] == "op" and self.peek()[1] == "(" and node[0] == "name":
                self.i += 1
                args = []
                if not self.accept(")"):
                    while True:
                        args.append(self.argument())
                        if self.accept(")"):
                            break
                        self.expect(",")
                node = ("call", node[1], args)
            else:
                return node

    def argument(self):
        if self.accept("{"):
            body = self.ternary()
            self.expect("}")
            return ("closure", body)
        return self.ternary()

    def primary(self):
        kind, value, pos = self.take()
        if kind in ("num", "str"):
            return ("lit", value)
        if kind == "name":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "nil":
                return ("lit", None)
            return ("name", value)
        if kind == "op" and value == "(":
            node = self.ternary()
            self.expect(")")
            return node
        if kind == "op" and value == "[":
            items = []
            if not self.accept("]"):
                while True:
                    items.append(self.ternary())
                    if self.accept("]"):
                        break
                    self.expect(",")
            return ("array", items)
        if kind == "op" and value == "#":
            return ("pointer",)
        if kind == "end":
            raise ExprError(f"unexpected end of expression {self.text!r}")
        raise ExprError(f"unexpected token {value!r} at position {pos + 1} in {self.text!r}")


@functools.lru_cache(maxsize=2000)
def compile_expr(text: str):
    """Parse once (cached); raises :class:`ExprError` on syntax errors."""
    return _Parser(text).parse()


# ----------------------------------------------------------------------------- runtime

def go_type(v: Any) -> str:
    """The Go type name expr would print for a value (``[]float64``, ``float64``…)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        inner = {go_type(x) for x in v}
        return f"[]{inner.pop()}" if len(inner) == 1 else "[]interface {}"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if callable(v):
        return "func"
    return type(v).__name__


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bad(op: str, a: Any, b: Any) -> ExprError:
    return ExprError(f"invalid operation: {go_type(a)} {op} {go_type(b)}")


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        if _num(a) and _num(b):
            return a == b
        return type(a) is type(b) and a == b if not (a is None or b is None) else a is b
    if op == "!=":
        return not _compare("==", a, b)
    if _num(a) and _num(b) or isinstance(a, str) and isinstance(b, str):
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        if op == "<=":
            return a <= b
        return a >= b
    raise _bad(op, a, b)


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    if not (_num(a) and _num(b)):
        raise _bad(op, a, b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.copysign(math.inf, a) if a else math.nan
        return a / b
    if op == "%":
        if not (isinstance(a, int) and isinstance(b, int)):
            raise _bad(op, a, b)
        if b == 0:
            raise ExprError("integer divide by zero")
        return int(math.fmod(a, b))
    return float(a) ** float(b)


def _truth(v: Any, op: str) -> bool:
    if not isinstance(v, bool):
        raise ExprError(f"invalid operation: {op} {go_type(v)} (the operand must be bool)")
    return v


def _seq(v: Any, fname: str) -> list:
    if isinstance(v, (list, tuple)):
        return list(v)
    raise ExprError(f"{fname}(): cannot iterate over {go_type(v)}")


def _median(xs: list) -> float:
    ys = sorted(xs)
    if not ys:
        return math.nan
    mid = len(ys) // 2
    return float(ys[mid]) if len(ys) % 2 else (ys[mid - 1] + ys[mid]) / 2


def _minmax(fn: Callable, name: str) -> Callable:
    def f(*args: Any) -> Any:
        xs = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        if not xs:
            raise ExprError(f"{name}(): not enough arguments")
        if not all(_num(x) for x in xs):
            raise ExprError(f"{name}(): invalid argument types")
        return fn(xs)
    return f


def _int(v: Any) -> int:
    if _num(v):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            raise ExprError(f'strconv.Atoi: parsing "{v}": invalid syntax') from None
    raise ExprError(f"invalid argument for int: {go_type(v)}")


def _float(v: Any) -> float:
    if _num(v):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            raise ExprError(f'strconv.ParseFloat: parsing "{v}": invalid syntax') from None
    raise ExprError(f"invalid argument for float: {go_type(v)}")


def _len(v: Any) -> int:
    if isinstance(v, (list, tuple, str, Mapping)):
        return len(v)
    raise ExprError(f"invalid argument for len (type {go_type(v)})")


def _abs(v: Any) -> Any:
    if _num(v):
        return abs(v)
    raise ExprError(f"invalid argument for abs (type {go_type(v)})")


BUILTINS: dict[str, Callable] = {
    "len": _len, "abs": _abs,
    "max": _minmax(max, "max"), "min": _minmax(min, "min"),
    "sum": lambda xs: sum(_seq(xs, "sum")),
    "mean": lambda xs: (sum(_seq(xs, "mean")) / len(xs)) if _seq(xs, "mean") else math.nan,
    "median": lambda xs: _median(_seq(xs, "median")),
    "int": _int, "float": _float, "string": lambda v: str(v),
    "first": lambda xs: _seq(xs, "first")[0] if _seq(xs, "first") else None,
    "last": lambda xs: _seq(xs, "last")[-1] if _seq(xs, "last") else None,
}
PREDICATES = ("all", "any", "none", "one", "filter", "map", "count")


def _as_float_argo(v: Any) -> float:
    if _num(v):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise ExprError(f'strconv.ParseFloat: parsing "{v}": invalid syntax') from None
    raise ExprError(f"asFloat() not supported on {go_type(v)} {v}")


def _as_int_argo(v: Any) -> int:
    if _num(v):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v, 10)
        except ValueError:
            raise ExprError(f'strconv.ParseInt: parsing "{v}": invalid syntax') from None
    raise ExprError(f"asInt() not supported on {go_type(v)} {v}")


def _float_arg(fname: str) -> Callable:
    def f(v: Any) -> bool:
        if not isinstance(v, float) and not _num(v):
            raise ExprError(f"cannot use {go_type(v)} as argument (type float64) to call {fname}")
        v = float(v)
        return math.isnan(v) if fname == "isNaN" else math.isinf(v)
    return f


def argo_env(result: Any) -> dict[str, Any]:
    """The environment Argo Rollouts gives a condition (``EvalCondition``)."""
    return {
        "result": result,
        "asInt": _as_int_argo,
        "asFloat": _as_float_argo,
        "isNaN": _float_arg("isNaN"),
        "isInf": _float_arg("isInf"),
        "isNil": lambda _=None: result is None,
        "default": lambda _=None, dflt=None: dflt if result is None else result,
    }


class _Eval:
    def __init__(self, env: Mapping[str, Any]):
        self.env = env
        self.pointer: list[Any] = []

    def run(self, node) -> Any:
        tag = node[0]
        if tag == "lit":
            return node[1]
        if tag == "name":
            if node[1] in self.env:
                return self.env[node[1]]
            raise ExprError(f"unknown name {node[1]}")
        if tag == "pointer":
            if not self.pointer:
                raise ExprError("# used outside of a predicate")
            return self.pointer[-1]
        if tag == "array":
            return [self.run(x) for x in node[1]]
        if tag == "unary":
            v = self.run(node[2])
            if node[1] == "not":
                return not _truth(v, "!")
            if not _num(v):
                raise ExprError(f"invalid operation: {node[1]} {go_type(v)}")
            return -v if node[1] == "-" else v
        if tag == "cond":
            return self.run(node[2]) if _truth(self.run(node[1]), "?") else self.run(node[3])
        if tag == "bin":
            return self.binary(node[1], node[2], node[3])
        if tag == "index":
            return self.index(self.run(node[1]), self.run(node[2]))
        if tag == "member":
            obj = self.run(node[1])
            if isinstance(obj, Mapping):
                return obj.get(node[2])
            if obj is None:
                raise ExprError(f"cannot fetch {node[2]} from <nil>")
            raise ExprError(f"type {go_type(obj)} has no field {node[2]}")
        if tag == "call":
            return self.call(node[1], node[2])
        if tag == "closure":
            return self.run(node[1])
        raise ExprError(f"cannot evaluate {tag}")  # pragma: no cover

    def binary(self, op: str, a_node, b_node) -> Any:
        if op == "and":
            return _truth(self.run(a_node), "&&") and _truth(self.run(b_node), "&&")
        if op == "or":
            return _truth(self.run(a_node), "||") or _truth(self.run(b_node), "||")
        if op == "??":
            a = self.run(a_node)
            return self.run(b_node) if a is None else a
        a, b = self.run(a_node), self.run(b_node)
        if op in ("==", "!=", "<", ">", "<=", ">="):
            return _compare(op, a, b)
        if op in ("in", "not in"):
            if isinstance(b, Mapping):
                found = a in b
            elif isinstance(b, (list, tuple)):
                found = any(_compare("==", a, x) for x in b)
            else:
                raise _bad(op, a, b)
            return found if op == "in" else not found
        if op in ("contains", "startsWith", "endsWith", "matches"):
            if not (isinstance(a, str) and isinstance(b, str)):
                raise _bad(op, a, b)
            if op == "contains":
                return b in a
            if op == "startsWith":
                return a.startswith(b)
            if op == "endsWith":
                return a.endswith(b)
            try:
                return re.search(b, a) is not None
            except re.error as exc:
                raise ExprError(f"error parsing regexp: {exc}") from None
        return _arith(op, a, b)

    def index(self, obj: Any, idx: Any) -> Any:
        if isinstance(obj, Mapping):
            return obj.get(idx)
        if isinstance(obj, (list, tuple, str)):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise ExprError(f"invalid operation: cannot use {go_type(idx)} as index to {go_type(obj)}")
            n = len(obj)
            i = idx + n if idx < 0 else idx
            if not 0 <= i < n:
                raise ExprError(f"index out of range: {idx} (array length is {n})")
            return obj[i]
        raise ExprError(f"invalid operation: cannot index {go_type(obj)}")

    def call(self, name: str, args: list) -> Any:
        if name in PREDICATES and name not in self.env:
            if len(args) != 2:
                raise ExprError(f"{name}() takes 2 arguments")
            items = _seq(self.run(args[0]), name)
            pred = args[1]
            out = []
            for x in items:
                self.pointer.append(x)
                try:
                    out.append(self.run(pred))
                finally:
                    self.pointer.pop()
            if name == "map":
                return out
            if name == "filter":
                return [x for x, keep in zip(items, out) if _truth(keep, "filter")]
            flags = [_truth(v, name) for v in out]
            if name == "all":
                return all(flags)
            if name == "any":
                return any(flags)
            if name == "none":
                return not any(flags)
            if name == "one":
                return sum(flags) == 1
            return sum(flags)
        fn = self.env.get(name) if name in self.env else BUILTINS.get(name)
        if fn is None:
            raise ExprError(f"unknown func {name}")
        if not callable(fn):
            raise ExprError(f"{name} is not callable ({go_type(fn)})")
        values = [self.run(a) for a in args]
        try:
            return fn(*values)
        except ExprError:
            raise
        except TypeError as exc:
            raise ExprError(f"{name}(): {exc}") from None


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate an expression in ``env``; raises :class:`ExprError`."""
    return _Eval(env).run(compile_expr(text))


def evaluate_condition(condition: str, result: Any) -> bool:
    """A success/failure condition over a measurement, as Argo's ``EvalCondition``: the
    value must be a bool (*expected bool, but got float64* otherwise)."""
    out = evaluate(condition, argo_env(result))
    if not isinstance(out, bool):
        raise ExprError(f"expected bool, but got {go_type(out)}")
    return out
