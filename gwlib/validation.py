"""Validation with the API server's eyes: schema, CEL rules and served versions.

The rules themselves live on the typed models (:mod:`gwlib.resources`): schema constraints
as pydantic field constraints, CEL rules as validators on the model that carries them in the
CRD. This module runs them over documents and words every failure the way ``kubectl`` does,
as one :class:`~gwlib.problems.Problem` per failure with a kubectl-style field path.

Which rules the API server evaluates depends on what the schema found: after a *blocking*
error (wrong type, Required, Unsupported value, Too long, Too many) no CEL rule at all, and
one field-less note says so; otherwise the CEL rules of every node, whatever was found
below it (the models' second pass, :func:`gwlib.resources.base.node_rule_errors`). The
uniqueness of list-map keys is checked in both cases.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .loader import Document, identity, read_documents
from .problems import BLOCKING_ERROR_TYPES, Problem

CHANNELS = ("standard", "experimental")

#: JSON type names the API server uses in "must be of type" messages.
_TYPE_NAMES = {
    "string_type": "string", "int_type": "integer", "int_from_float": "integer",
    "int_parsing": "integer", "bool_type": "boolean", "bool_parsing": "boolean",
    "float_type": "number", "dict_type": "object", "model_type": "object",
    "model_attributes_type": "object", "list_type": "array", "tuple_type": "array",
    "set_type": "array", "is_instance_of": "object",
}


#: Schema errors after which the API server evaluates no CEL rule (wrong type, Required,
#: Unsupported value, Too long, Too many); pattern and bounds errors, duplicates and failed
#: CEL rules are not blocking.  The models use the same set to decide what their second
#: pass evaluates (see :mod:`gwlib.resources.base`).
BLOCKING = BLOCKING_ERROR_TYPES
CEL_SKIPPED = ('Invalid value: "null": some validation rules were not checked because the object was '
               "invalid; correct the existing errors to complete validation")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):  # pragma: no cover - json.dumps with default=str
        return repr(value)


def field_path(loc: tuple) -> str:
    """('spec', 'rules', 0, 'matches', 1, 'path') -> 'spec.rules[0].matches[1].path'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str):
            if part.startswith(("function-", "tagged-union", "lax-", "strict-")) or "[" in part and "]" in part:
                continue  # pydantic's internal validator names, not fields
            out += f".{part}" if out else part
    return out


def _join(path: str, extra: str) -> str:
    if not extra:
        return path
    if extra.startswith("["):
        return path + extra
    extra = extra.lstrip(".")
    return f"{path}.{extra}" if path else extra


def describe_error(err: dict) -> tuple[str, str]:
    """One pydantic error → (field path, kubectl-like message)."""
    kind = err.get("type", "")
    loc = tuple(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    value = err.get("input")
    path = field_path(loc)
    if ctx.get("field_path"):
        path = _join(path, str(ctx["field_path"]))
    if kind == "missing":
        return path, "Required value"
    if kind == "extra_forbidden":
        name = ctx.get("field") or (path.rsplit(".", 1)[-1] if path else "")
        return path, f'unknown field "{name}"'
    if kind in _TYPE_NAMES:
        return path, f'Invalid value: "{json_type(value)}": must be of type {_TYPE_NAMES[kind]}'
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        opts = ", ".join(f'"{o.strip().strip(chr(39))}"' for o in expected.replace(" or ", ", ").split(",") if o.strip())
        return path, f"Unsupported value: {_show(value)}: supported values: {opts}"
    if kind == "string_pattern_mismatch":
        return path, f"Invalid value: {_show(value)}: should match '{ctx.get('pattern')}'"
    if kind == "string_too_short":
        return path, f"Invalid value: {_show(value)}: should be at least {ctx.get('min_length')} chars long"
    if kind == "string_too_long":
        return path, f"Too long: may not be longer than {ctx.get('max_length')}"
    if kind == "too_long":
        n = ctx.get("actual_length", len(value) if hasattr(value, "__len__") else "?")
        return path, f"Too many: {n}: must have at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return path, f"Invalid value: {ctx.get('actual_length')}: should have at least {ctx.get('min_length')} items"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        word = "greater than or equal to" if kind == "greater_than_equal" else "greater than"
        return path, f"Invalid value: {_show(value)}: should be {word} {bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        word = "less than or equal to" if kind == "less_than_equal" else "less than"
        return path, f"Invalid value: {_show(value)}: should be {word} {bound}"
    msg = str(err.get("msg", kind))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if kind == "cel" and not msg.startswith("Invalid value"):
        # kubectl: 'Invalid value: "<type>": <rule message>', where <type> is the OpenAPI type of
        # the schema node carrying the rule ("object", "array" for a rule on a list, ...):
        # apiextensions-apiserver builds it with field.Invalid(fldPath, sts.Type, detail).
        node_type = ctx.get("node_type") or (json_type(value) if value is not None else "object")
        msg = f'Invalid value: "{node_type}": {msg}'
    return path, msg


def parse_document(doc: Document, channel: str = "standard"):
    """One document → (resource or None, problems). Never raises for bad input."""
    from .resources import GenericObject, model_for, served

    if doc.problem is not None:
        return None, [doc.problem]
    data = doc.data
    kind, ns, name = identity(data)
    problems: list[Problem] = []

    def problem(path: str, message: str) -> None:
        problems.append(Problem(doc.file, doc.index, kind, ns, name, path, message))

    api_version = data.get("apiVersion")
    if "apiVersion" not in data or api_version in (None, ""):
        problem("", "apiVersion not set")
    elif not isinstance(api_version, str):
        problem("apiVersion", f'Invalid value: "{json_type(api_version)}": must be of type string')
    if "kind" not in data or data.get("kind") in (None, ""):
        problem("", "kind not set")
    elif not isinstance(data.get("kind"), str):
        problem("kind", f'Invalid value: "{json_type(data.get("kind"))}": must be of type string')
    if problems:
        return None, problems

    model = model_for(api_version, kind)
    if model is not None and not ns and getattr(model, "NAMESPACED", False):
        ns = "default"  # where kubectl would put it
    if model is None:
        group = api_version.split("/")[0] if "/" in api_version else ""
        if group == "gateway.networking.k8s.io" or kind in _GATEWAY_KINDS:
            problem("apiVersion", f'no matches for kind "{kind}" in version "{api_version}": '
                                  f"not served by the Gateway API v1.6.1 CRDs")
            return None, problems
        try:
            obj = GenericObject.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                problem(*describe_error(err))
            return None, problems
        obj.set_source(doc.file, doc.index)
        return obj, []
    if not served(api_version, kind, channel):
        problem("apiVersion", f'version "{api_version}" of {kind} is not served in the {channel} '
                              f"channel of Gateway API v1.6.1")
        return None, problems
    try:
        obj = model.model_validate(data, context={"channel": channel})
    except ValidationError as exc:
        errors = exc.errors()
        if any(e.get("type") in BLOCKING for e in errors):
            # The API server runs no CEL rule when a "blocking" schema error was found, and
            # says so in one field-less cause (apiextensions-apiserver, hasBlockingErr).
            errors = [e for e in errors if e.get("type") != "cel"]
            errors.append({"type": "cel_skipped", "loc": (), "msg": CEL_SKIPPED, "input": None})
        seen = set()
        for err in errors:
            line = describe_error(err)
            if line not in seen:
                seen.add(line)
                problem(*line)
        return None, problems
    except (RecursionError, ValueError, TypeError) as exc:  # defensive: never a traceback
        problem("", f"cannot validate: {exc}")
        return None, problems
    obj.set_source(doc.file, doc.index)
    return obj, []


_GATEWAY_KINDS = {"GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "TCPRoute", "UDPRoute",
                  "TLSRoute", "ReferenceGrant"}


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: use 'standard' or 'experimental'")


def validate(*sources: Any, channel: str = "standard") -> list[Problem]:
    """Check manifests as the API server would for the Gateway API v1.6.1 CRDs.

    ``sources`` are anything :func:`gwlib.load` takes. Returns the problems found — an
    empty list means every document is valid. Problems name the file, the document index,
    the object and the field path::

        >>> for p in gwlib.validate("data/manifests"): print(p.line())
    """
    _check_channel(channel)
    problems: list[Problem] = []
    for doc in read_documents(list(sources) if len(sources) != 1 else sources[0]):
        problems.extend(parse_document(doc, channel)[1])
    return problems


class InvalidManifest(ValueError):
    """Raised by :func:`load` when some documents are invalid; ``.problems`` lists them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = problems[0].line() if problems else "invalid input"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(head + more)


def load(*sources: Any, channel: str = "experimental") -> list:
    """Load manifests into typed resources (in input order).

    ``sources``: paths (files or folders), YAML strings (multi-document), dicts, or lists
    of them. Each object remembers its file and document index (``obj.source``). Kinds
    gwlib does not model are kept as :class:`~gwlib.resources.GenericObject`. The default
    channel is ``experimental`` so that nothing a manifest says is refused; use
    :func:`validate` to check a manifest against the standard channel.

    Raises :class:`InvalidManifest` (a ``ValueError``) listing every problem when any
    document is invalid: nothing is half-loaded.
    """
    _check_channel(channel)
    objects, problems = [], []
    for doc in read_documents(list(sources) if len(sources) != 1 else sources[0]):
        obj, probs = parse_document(doc, channel)
        problems.extend(probs)
        if obj is not None:
            objects.append(obj)
    if problems:
        raise InvalidManifest(problems)
    return objects
