"""``gwlib.explain``: the documentation of a field, offline, like ``kubectl explain``.

It reads the typed models (:mod:`gwlib.resources`): each model's docstring and each field's
description, type, default, enum values and whether it is required.
"""
from __future__ import annotations

import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


class ExplainError(LookupError):
    """The kind or field does not exist."""


class Explanation(str):
    """The text of an explanation; shows as plain text in notebooks and shells."""

    def __repr__(self) -> str:
        return str(self)


@dataclass
class _Type:
    name: str                      # kubectl-style: string, integer, boolean, Object, []Object, map[string]string
    model: type[BaseModel] | None  # the nested model, if any
    enum: tuple | None


def _unwrap(annotation: Any) -> _Type:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unwrap(args[0])
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _unwrap(inner[0])
        parts = [_unwrap(a) for a in inner]
        model = next((p.model for p in parts if p.model), None)
        return _Type(" | ".join(p.name for p in parts), model, None)
    if origin is Literal:
        kinds = {type(a) for a in args}
        base = "integer" if kinds == {int} else "string"
        return _Type(base, None, tuple(args))
    if origin in (list, tuple, set, frozenset):
        item = _unwrap(args[0]) if args else _Type("Object", None, None)
        return _Type(f"[]{item.name}", item.model, item.enum)
    if origin is dict:
        value = _unwrap(args[1]) if len(args) > 1 else _Type("Object", None, None)
        return _Type(f"map[string]{value.name}", value.model, None)
    if inspect.isclass(annotation):
        if issubclass(annotation, BaseModel):
            return _Type("Object", annotation, None)
        if issubclass(annotation, bool):
            return _Type("boolean", None, None)
        if issubclass(annotation, int):
            return _Type("integer", None, None)
        if issubclass(annotation, float):
            return _Type("number", None, None)
        if issubclass(annotation, str):
            return _Type("string", None, None)
        if issubclass(annotation, dict):
            return _Type("Object", None, None)
    return _Type("Object", None, None)


def _fields_by_alias(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    out = {}
    for name, info in model.model_fields.items():
        out[info.alias or name] = (name, info)
    return out


def _kind_model(kind: str) -> tuple[str, type[BaseModel]]:
    """The kind's proper name and its (newest-version) model; plurals as kubectl takes them."""
    from . import resources

    wanted = kind.lower()
    for _, k in resources.KINDS:
        if wanted in (k.lower(), k.lower() + "s", k.lower() + "es"):
            model = getattr(resources, k, None)
            if model is not None:
                return k, model
    known = sorted({k for _, k in resources.KINDS})
    raise ExplainError(f"unknown kind {kind!r}; gwlib knows: {', '.join(known)}")


def _api_version_of(kind: str) -> str:
    """The preferred (first listed v1, else first) apiVersion gwlib models for a kind."""
    from .resources import KINDS

    versions = [v for v, k in KINDS if k == kind]
    return next((v for v in versions if v.endswith("/v1") or v == "v1"), versions[0] if versions else "")


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "") if obj is not None else ""


def _indent(text: str, n: int = 4) -> str:
    paras = [" ".join(p.split()) for p in (text or "<no description>").split("\n\n")]
    return "\n\n".join(textwrap.fill(p, width=88, initial_indent=" " * n, subsequent_indent=" " * n)
                       for p in paras if p)


def _field_lines(model: type[BaseModel], recursive: bool, depth: int = 1) -> list[str]:
    lines = []
    for alias, (_, info) in _fields_by_alias(model).items():
        t = _unwrap(info.annotation)
        req = " -required-" if info.is_required() else ""
        pad = "  " * depth
        if recursive:
            lines.append(f"{pad}{alias}\t<{t.name}>{req}")
            if t.model is not None and depth < 12:
                lines.extend(_field_lines(t.model, True, depth + 1))
        else:
            first = (info.description or "").strip().split("\n")[0]
            lines.append(f"{pad}{alias}\t<{t.name}>{req}")
            if first:
                lines.append(textwrap.fill(first, width=88, initial_indent=pad + "  ",
                                           subsequent_indent=pad + "  "))
            lines.append("")
    return lines


def explain_text(field: str, recursive: bool = False) -> Explanation:
    """The explanation of ``Kind[.path.to.field]`` as text (raises :class:`ExplainError`)."""
    parts = [p for p in field.strip().split(".") if p]
    if not parts:
        raise ExplainError("give a kind and optionally a field path, e.g. HTTPRoute.spec.rules")
    kind_name, model = _kind_model(parts[0])
    api_version = _api_version_of(kind_name)
    group, _, version = (api_version or "").rpartition("/")
    current: type[BaseModel] | None = model
    info = None
    t = _Type("Object", model, None)
    walked = [kind_name]
    for part in parts[1:]:
        if current is None:
            raise ExplainError(f'field "{part}" does not exist: {".".join(walked)} is <{t.name}>')
        fields = _fields_by_alias(current)
        if part not in fields:
            raise ExplainError(f'field "{part}" does not exist in {".".join(walked)} '
                               f"(fields: {', '.join(fields) or 'none'})")
        _, info = fields[part]
        t = _unwrap(info.annotation)
        current = t.model
        walked.append(part)

    out = [f"GROUP:      {group}", f"KIND:       {kind_name}", f"VERSION:    {version}", ""]
    if info is None:
        out += [f"DESCRIPTION:", _indent(_doc(model)), ""]
    else:
        out += [f"FIELD: {walked[-1]} <{t.name}>", ""]
        out += ["DESCRIPTION:", _indent(info.description or _doc(t.model)), ""]
        default = info.default
        if default is not PydanticUndefined and default is not None:
            if isinstance(default, BaseModel):
                default = default.model_dump(by_alias=True, exclude_none=True)
            out += [f"DEFAULT: {default}", ""]
        elif info.default_factory is not None:
            try:
                value = info.default_factory()
                if isinstance(value, BaseModel):
                    value = value.model_dump(by_alias=True, exclude_none=True)
                elif isinstance(value, list):
                    value = [v.model_dump(by_alias=True, exclude_none=True) if isinstance(v, BaseModel) else v
                             for v in value]
                out += [f"DEFAULT: {value}", ""]
            except TypeError:  # factories that need arguments
                pass
        if t.enum:
            out += ["ENUM: " + ", ".join(str(e) for e in t.enum), ""]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("channel") == "experimental":
            out += ["CHANNEL: experimental only (rejected as an unknown field by the standard CRDs)", ""]
    if current is not None:
        out += ["FIELDS:"] + _field_lines(current, recursive)
    return Explanation("\n".join(out).rstrip() + "\n")


def explain(field: str, recursive: bool = False) -> Explanation:
    """``gwlib.explain("HTTPRoute.spec.rules.backendRefs.weight")``: meaning, type, default,
    enum values, support level and channel of a field; with no field path, the kind itself.
    The result prints as text (and shows as text in a notebook)."""
    return explain_text(field, recursive=recursive)
