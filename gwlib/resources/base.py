"""Foundations shared by every gwlib resource model.

* :class:`GWModel` -- the pydantic base with the API-server-like configuration
  (camelCase aliases, unknown fields rejected, strict scalar types).
* helpers that report errors the way the Kubernetes API server does:
  CEL rule failures (:func:`cel_error`), duplicate keys of list-maps and sets
  (:func:`dup_errors`, :func:`scalar_list_rules`), fields that exist only in the experimental channel
  (:data:`ExperimentalOnly`).
* :class:`ObjectMeta`, :class:`Resource` (the base of every top-level object)
  and :class:`GenericObject` (anything gwlib has no model for).

Error locations
---------------
pydantic reports the location of an error as the path of the node whose
validator raised it.  CEL rules are implemented as ``model_validator(mode="after")``
on the model that matches the schema node carrying the rule, so the location is
the same as the one the API server prints.  A rule that upstream attaches to a
*list* (for example ``spec.parentRefs``) is raised by the model that owns the list
and carries ``ctx["field_path"]`` (``".parentRefs"``), which the caller appends to
the location.  The API server prints the OpenAPI type of the node carrying a
rule as the error's value (``spec.parentRefs: Invalid value: "array": ...``,
``spec.rules[0]: Invalid value: "object": ...``); :func:`cel_error` takes it as
``node_type`` (``"object"`` by default, ``"array"`` for rules on a list) and
keeps it in ``ctx["node_type"]``, independently of ``field_path``.  Duplicate list-map keys are reported *at the later duplicate item*
(``spec.listeners[1]``; only the second appearance of a key), exactly like
``kubectl`` shows ``Duplicate value``.

Rules of enclosing nodes: the second pass
-----------------------------------------
The API server checks an object in this order (apiextensions-apiserver,
``customResourceStrategy.Validate``): the OpenAPI schema of every node, the
uniqueness of list-map keys and list-set items (``ValidateListSetsAndMaps``),
and then -- unless one of the errors so far is *blocking* (wrong type,
Required, Unsupported value, Too long, Too many; see
:data:`gwlib.problems.BLOCKING_ERROR_TYPES`) -- the CEL rules of *every* node, each evaluated
on the raw (defaulted, pruned) data whatever was found below it.

pydantic runs a model's after-validators only when everything below the model
validated, so a pattern or minimum error, a duplicate key or a failed CEL rule
deep inside hides the rules of every node above it.  :class:`Resource`
therefore validates in two passes:

1. the ordinary pydantic validation, which reports every schema error and the
   rules of the nodes whose subtree is valid;
2. only when (1) failed: :func:`node_rule_errors` builds the object again from
   the raw input *without any check* (``model_construct``, node by node, with
   the schema defaults, unknown fields and fields of another channel pruned,
   exactly the data the API server's rules see) and evaluates the rules of every
   node on it, at the location it builds up while walking down
   (``("spec", "rules", 0)``, the same one pydantic would give).  When (1) found
   a blocking error, only the list-map/list-set uniqueness is evaluated, as
   the API server skips the CEL rules then (and says so, see
   :mod:`gwlib.validation`); a value of the wrong type is then not looked
   into, as the API server's list-type walk does not look into it either.

The problems of (2) that (1) did not already report are added to the
``ValidationError`` after those of (1), with the same types, messages and
context.  Valid objects never run the second pass (it costs them one wrap
validator call, about 0.3 µs per object).  Rules raised by field
validators (:func:`scalar_list_rules`) need no second pass: pydantic validates
every field of a model even when a sibling fails.
"""
from __future__ import annotations

import functools
import json
import re
import types
from datetime import datetime, timezone
from typing import Annotated, Any, Callable, ClassVar, Optional, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    WrapValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from ..problems import BLOCKING_ERROR_TYPES

_KNOWN_ERROR_TYPES = frozenset(get_args(ErrorType))

__all__ = [
    "GWModel",
    "ObjectMeta",
    "OwnerReference",
    "Resource",
    "GenericObject",
    "channel_of",
    "cel_error",
    "raise_errors",
    "dup_errors",
    "scalar_list_rules",
    "ExperimentalOnly",
    "node_rule_errors",
    "DNS1123_LABEL",
    "DNS1123_SUBDOMAIN",
    "DNS1035_LABEL",
]

# --------------------------------------------------------------------------- regexes
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_RE_LABEL = re.compile(DNS1123_LABEL)
_RE_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN)
_RE_1035 = re.compile(DNS1035_LABEL)

# Messages as printed by the Kubernetes API server (apimachinery validation).
_MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_MSG_1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_MSG_QNAME = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


# --------------------------------------------------------------------------- helpers
def channel_of(info: Optional[ValidationInfo]) -> str:
    """The release channel a validation runs for: ``"standard"`` unless the
    caller passed ``context={"channel": "experimental"}``."""
    ctx = info.context if info is not None else None
    if isinstance(ctx, dict) and ctx.get("channel") == "experimental":
        return "experimental"
    return "standard"


def cel_error(message: str, field_path: Optional[str] = None,
              loc: tuple = (), node_type: str = "object") -> InitErrorDetails:
    """One failed CEL rule, as an error line for :func:`raise_errors`.

    ``message`` is the upstream rule message, verbatim.  ``field_path`` is the
    upstream ``fieldPath`` of the rule, or (for rules that upstream puts on a
    list node) the path of that list relative to the raising model.

    ``node_type`` is the OpenAPI ``type`` of the schema node that *carries* the
    rule (``"object"``, ``"array"``, ``"string"``, ...).  The API server prints
    it as the value of the error -- ``spec.parentRefs: Invalid value: "array":
    <message>`` -- whatever the data is and whatever ``fieldPath`` says
    (apiextensions-apiserver ``schema/cel/validation.go`` builds the error with
    ``field.Invalid(fldPath, sts.Type, detail)``).  It is kept in
    ``ctx["node_type"]`` and used by :func:`gwlib.validation.describe_error`.
    Pass ``"array"`` for every rule upstream puts on a list (the
    ``+kubebuilder:validation:XValidation`` marker on a slice field); rules
    on a struct type or a map field keep the default ``"object"``."""
    ctx: dict[str, Any] = {"message": message, "node_type": node_type}
    if field_path:
        ctx["field_path"] = field_path
    return InitErrorDetails(type=PydanticCustomError("cel", "{message}", ctx), loc=loc, input=None)


def raise_errors(title: str, errors: list[InitErrorDetails]) -> None:
    """Raise all collected errors at once.  pydantic merges the lines of a
    ValidationError raised inside a validator into the outer error, prefixing
    the location of the node being validated, so every problem is reported."""
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def _key_repr(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=False)
    except TypeError:  # pragma: no cover - defensive
        return repr(value)


def dup_errors(items: Optional[list], keys: tuple[str, ...], alias: str) -> list[InitErrorDetails]:
    """Duplicate keys of a list the CRD marks ``x-kubernetes-list-type: map``
    (``keys``: the list-map keys, JSON names) or ``set`` (no keys: the items
    themselves must be unique).

    A duplicate is reported *at the later item* (``<alias>[i]``) with type
    ``duplicate`` and the message ``Duplicate value: <key>``, the way the API
    server reports it: only the second appearance of a key is reported, not a
    third (``validateListSet`` of apiextensions-apiserver)."""
    if not items or not isinstance(items, list) or len(items) < 2:
        return []
    attrs = [to_snake(k) for k in keys]
    seen: dict = {}
    errors: list[InitErrorDetails] = []
    for i, item in enumerate(items):
        if keys:
            kv = {}
            for k, attr in zip(keys, attrs):
                if isinstance(item, BaseModel):
                    kv[k] = getattr(item, attr, None)
                elif isinstance(item, dict):
                    kv[k] = item.get(k)
                else:
                    kv[k] = None
            marker: Any = tuple(_freeze(kv[k]) for k in keys)
            shown: Any = {k: v for k, v in kv.items() if v is not None}
        else:
            shown = item.model_dump(by_alias=True) if isinstance(item, BaseModel) else item
            marker = _freeze(shown)
        try:
            hash(marker)
        except TypeError:  # pragma: no cover - raw input of odd types
            continue
        times = seen.get(marker, 0)
        seen[marker] = times + 1
        if times == 1:
            errors.append(InitErrorDetails(
                type=PydanticCustomError("duplicate", "Duplicate value: {value}", {"value": _key_repr(shown)}),
                loc=(alias, i) if alias else (i,), input=item if not isinstance(item, BaseModel) else None))
    return errors


def _as_details(err: dict) -> InitErrorDetails:
    """Turn one line of ``ValidationError.errors()`` back into error details.

    A pydantic error type is kept as such when it renders the same message again;
    a custom error that borrows a pydantic type name (``extra_forbidden`` of
    :data:`ExperimentalOnly`, ``missing`` with the API server's wording, ...) is
    re-created as a custom error, so its own message survives."""
    t = err["type"]
    ctx = err.get("ctx")
    if t in _KNOWN_ERROR_TYPES:
        d = InitErrorDetails(type=t, loc=tuple(err["loc"]), input=err.get("input"))
        if ctx:
            d["ctx"] = ctx
        try:
            again = ValidationError.from_exception_data("", [d]).errors(include_url=False)[0]["msg"]
        except (TypeError, KeyError, ValueError):  # a context the pydantic type does not take
            again = None
        if again == err.get("msg"):
            return d
    # the rendered message is used as the template: braces in it survive
    # formatting unless they name a context key, which rendered text no longer does
    return InitErrorDetails(type=PydanticCustomError(t, err["msg"], ctx), loc=tuple(err["loc"]),
                            input=err.get("input"))


def scalar_list_rules(rule: Optional[Callable[[list], list[InitErrorDetails]]] = None,
                      unique: bool = False):
    """A ``WrapValidator`` for a list of scalars that carries CEL rules and/or
    set semantics.  The rules are evaluated on the input even when some items
    fail their own schema checks, so both kinds of problems are reported, as
    the API server does.  Errors are located at the list itself (CEL) or at
    the duplicate item."""

    def wrap(value: Any, handler, info: ValidationInfo):
        extra: list[InitErrorDetails] = []
        if isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            if unique:
                extra.extend(dup_errors(value, (), ""))
            if rule is not None:
                extra.extend(rule(value))
        try:
            result = handler(value)
        except ValidationError as exc:
            raise_errors("list", [_as_details(e) for e in exc.errors(include_url=False)] + extra)
            raise  # pragma: no cover
        raise_errors("list", extra)
        return result

    return WrapValidator(wrap)


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _experimental_only(value: Any, info: ValidationInfo) -> Any:
    if channel_of(info) != "experimental":
        name = to_camel(info.field_name or "")
        raise PydanticCustomError("extra_forbidden", 'unknown field "{field}"', {"field": name})
    return value


#: Put ``Annotated[T, ExperimentalOnly]`` on a field that exists only in the
#: experimental CRDs: in the standard channel it is an unknown field.
ExperimentalOnly = BeforeValidator(_experimental_only)

EXPERIMENTAL = {"channel": "experimental"}


# --------------------------------------------------------------------------- base model
class GWModel(BaseModel):
    """Base of every gwlib model: JSON (camelCase) names as aliases, snake_case
    attributes, unknown fields rejected, scalars checked strictly (the API server
    rejects ``"80"`` for an integer), defaults not re-validated."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        validate_default=False,
        validate_assignment=False,
        ser_json_by_alias=True,
        defer_build=True,
    )

    #: list-map / set fields of this node: attribute -> list-map keys (JSON
    #: names; empty tuple for a set).  Duplicates are reported with the CEL
    #: rules of the node.
    LIST_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {}

    @model_validator(mode="after")
    def _cel_rules(self, info: ValidationInfo):
        errors = self._list_type_errors()
        errors.extend(self._cel(channel_of(info)))
        if errors:
            raise_errors(type(self).__name__, errors)
        return self

    def _list_type_errors(self) -> list[InitErrorDetails]:
        """Duplicate keys of the list-maps and list-sets of this node
        (:attr:`LIST_KEYS`).  The API server checks them even after a blocking
        schema error."""
        errors: list[InitErrorDetails] = []
        for attr, keys in self.LIST_KEYS.items():
            field = type(self).model_fields[attr]
            errors.extend(dup_errors(getattr(self, attr, None), keys, field.alias or attr))
        return errors

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        """CEL rules of this schema node; subclasses return the failures.

        The rules also run in the second pass (:func:`node_rule_errors`) on a node
        built without checks, where values may break their pattern or bounds (never
        their type, and no required field is missing): a rule must only rely on
        what the API server's CEL rule relies on."""
        return []


# --------------------------------------------------------------------------- second pass
_MISFIT = object()  # a raw value of another type than the schema's: not looked into
_UNION_ORIGINS = (Union, types.UnionType)
_SCALAR = ("scalar",)  # shapes: _SCALAR, ("model", cls), ("list", item), ("dict", value), ("union", alternatives)


def _shape(annotation: Any) -> tuple:
    """What the second pass needs to know of a field's type: where models are."""
    origin = get_origin(annotation)
    while origin is Annotated:
        annotation = get_args(annotation)[0]
        origin = get_origin(annotation)
    if origin in _UNION_ORIGINS:
        alternatives = tuple(dict.fromkeys(_shape(a) for a in get_args(annotation) if a is not type(None)))
        if all(a is _SCALAR for a in alternatives):
            return _SCALAR
        return alternatives[0] if len(alternatives) == 1 else ("union", alternatives)
    if isinstance(annotation, type) and issubclass(annotation, GWModel):
        return ("model", annotation)
    if origin is list:
        return ("list", _shape((get_args(annotation) or (Any,))[0]))
    if origin is dict:
        args = get_args(annotation)
        return ("dict", _shape(args[1] if len(args) == 2 else Any))
    return _SCALAR


@functools.cache
def _field_plan(model: type[BaseModel]) -> tuple[tuple[str, str, tuple, bool], ...]:
    """(attribute, JSON name, shape, experimental only) for every field of ``model``."""
    return tuple((name, f.alias or name, _shape(f.annotation), any(m is ExperimentalOnly for m in f.metadata))
                 for name, f in model.model_fields.items())


class _RuleWalk:
    """Builds a model tree from raw data without checking it, evaluating the
    rules of every node on the way (the second pass, see the module docstring)."""

    def __init__(self, channel: str, cel: bool):
        self.channel = channel
        self.cel = cel
        self.errors: list[InitErrorDetails] = []

    def build(self, model: type[GWModel], raw: dict, loc: tuple) -> GWModel:
        values: dict[str, Any] = {}
        for name, alias, shape, experimental in _field_plan(model):
            if alias in raw:
                key = alias
            elif name in raw:  # populate_by_name, as pydantic accepts it
                key = name
            else:
                continue  # the default applies, as the API server defaults before validating
            if experimental and self.channel != "experimental":
                continue  # pruned: the standard CRD has no such field
            value = self.value(shape, raw[key], loc + (key,))
            values[name] = None if value is _MISFIT else value
        # unknown keys are left out: the API server prunes them before any rule runs
        node = model.model_construct(**values)
        self.evaluate(node, loc)
        return node

    def value(self, shape: tuple, raw: Any, loc: tuple) -> Any:
        """``raw`` built for ``shape``; ``_MISFIT`` when it has another type (a list
        or map with such an item included: its list-map keys are not compared)."""
        if raw is None or shape is _SCALAR:
            return raw  # a scalar is kept as written: its own checks belong to the first pass
        kind = shape[0]
        if kind == "model":
            return self.build(shape[1], raw, loc) if isinstance(raw, dict) else _MISFIT
        if kind == "list":
            if not isinstance(raw, list):
                return _MISFIT
            if shape[1] is _SCALAR:
                return raw
            items = [self.value(shape[1], x, loc + (i,)) for i, x in enumerate(raw)]
            return _MISFIT if any(x is _MISFIT for x in items) else items
        if kind == "dict":
            if not isinstance(raw, dict):
                return _MISFIT
            if shape[1] is _SCALAR:
                return raw
            items = {k: self.value(shape[1], x, loc + (k,)) for k, x in raw.items()}
            return _MISFIT if any(x is _MISFIT for x in items.values()) else items
        for alternative in shape[1]:  # a union
            built = self.value(alternative, raw, loc)
            if built is not _MISFIT:
                return built
        return _MISFIT

    def evaluate(self, node: GWModel, loc: tuple) -> None:
        try:
            found = node._list_type_errors()
            if self.cel:
                found.extend(node._cel(self.channel))
        except Exception:  # noqa: BLE001 - a rule met data it cannot read; the first pass has reported it
            return
        for err in found:
            self.errors.append({**err, "loc": loc + tuple(err.get("loc", ()))})  # type: ignore[typeddict-item]


def node_rule_errors(model: type[GWModel], data: dict, channel: str = "standard",
                     cel: bool = True) -> list[InitErrorDetails]:
    """The second pass: the rules of every node of ``data`` (a raw document for
    ``model``), evaluated whatever the schema found wrong below the node, with
    locations from the document root.

    ``cel=False`` evaluates only the list-map / list-set uniqueness, as the API
    server does after a blocking schema error.  The node is built with the
    schema defaults and without unknown fields or fields of the other channel,
    so no rule sees data the API server's rules would not see."""
    walk = _RuleWalk(channel, cel)
    walk.build(model, data, ())
    return walk.errors


def _error_key(err: dict) -> tuple:
    return tuple(err["loc"]), err["type"], err["msg"], (err.get("ctx") or {}).get("field_path")


# --------------------------------------------------------------------------- metadata
class OwnerReference(GWModel):
    """A reference to the object that owns this one (garbage collection)."""

    api_version: str = Field(description="API version of the owner.")
    kind: str = Field(description="Kind of the owner.")
    name: str = Field(description="Name of the owner.")
    uid: str = Field(description="UID of the owner.")
    controller: Optional[bool] = Field(None, description="True when the owner is the managing controller.")
    block_owner_deletion: Optional[bool] = Field(
        None, description="When true, the owner cannot be deleted from the key-value store until this object is.")


def _check_qualified_key(key: str, what: str) -> list[str]:
    """apimachinery IsQualifiedName: optional DNS-subdomain prefix (<=253) + '/' +
    name (<=63)."""
    problems: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if len(prefix) == 0:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                problems.append("prefix part must be no more than 253 characters")
            if not _RE_SUBDOMAIN.match(prefix):
                problems.append("prefix part " + _MSG_SUBDOMAIN)
    else:
        return [("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
                 "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                 "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
                 "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]
    if len(name) == 0:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if name and not _LABEL_NAME.match(name):
        problems.append(_MSG_QNAME)
    return problems


class ObjectMeta(GWModel):
    """Standard Kubernetes object metadata (``metadata``).  Only ``name`` is
    required by gwlib; server-populated fields are accepted and kept."""

    name: str = Field(description="Name of the object, unique within its namespace (or the cluster "
                                  "for cluster-scoped kinds). Required.")
    generate_name: Optional[str] = Field(None, description="Prefix the server uses to generate a "
                                                           "unique name when `name` is empty (accepted, not used by gwlib).")
    namespace: Optional[str] = Field(None, max_length=63, pattern=DNS1123_LABEL,
                                     description="Namespace of the object (an RFC 1123 label). "
                                                 "When omitted, namespaced objects go to `default`.")
    labels: Optional[dict[str, str]] = Field(None, description="Key/value labels used by selectors.")
    annotations: Optional[dict[str, str]] = Field(None, description="Free-form key/value metadata, "
                                                                    "e.g. controller-specific settings.")
    uid: Optional[str] = Field(None, description="Server-assigned unique id.")
    resource_version: Optional[str] = Field(None, description="Server-assigned version for optimistic concurrency.")
    generation: Optional[int] = Field(None, ge=0, description="Sequence number of the desired state "
                                                             "(`observedGeneration` in status conditions refers to it).")
    creation_timestamp: Optional[str] = Field(None, description="RFC 3339 time the object was created; "
                                                                "used for route precedence (oldest first).")
    deletion_timestamp: Optional[str] = Field(None, description="RFC 3339 time the object is to be deleted.")
    deletion_grace_period_seconds: Optional[int] = Field(None, description="Grace period before deletion.")
    owner_references: Optional[list[OwnerReference]] = Field(None, description="Objects this one depends on.")
    finalizers: Optional[list[str]] = Field(None, description="Keys that must be removed before the object is deleted.")
    managed_fields: Optional[list[dict[str, Any]]] = Field(None, description="Server-side apply bookkeeping (kept as is).")
    self_link: Optional[str] = Field(None, description="Deprecated link to the object.")

    @field_validator("creation_timestamp", "deletion_timestamp", mode="before")
    @classmethod
    def _timestamp(cls, v: Any) -> Any:
        # YAML turns an unquoted timestamp into a datetime; keep RFC 3339 text.
        if isinstance(v, datetime):
            if v.tzinfo is None:
                v = v.replace(tzinfo=timezone.utc)
            return v.isoformat().replace("+00:00", "Z")
        if isinstance(v, str) and v:
            if _parse_time(v) is None:
                raise PydanticCustomError("datetime_from_date_parsing",
                                          "Input should be a valid RFC 3339 date-time")
        return v

    @model_validator(mode="after")
    def _labels_and_annotations(self) -> "ObjectMeta":
        errors: list[InitErrorDetails] = []

        def add(loc: tuple, msg: str) -> None:
            errors.append(InitErrorDetails(type=PydanticCustomError("invalid_value", "{message}",
                                                                    {"message": msg}), loc=loc, input=None))

        for key, value in (self.labels or {}).items():
            for p in _check_qualified_key(key, "label"):
                add(("labels",), f'Invalid value: "{key}": {p}')
            if len(value) > 63:
                add(("labels",), f'Invalid value: "{value}": must be no more than 63 characters')
            if not _LABEL_VALUE.match(value):
                add(("labels",), f'Invalid value: "{value}": {_MSG_LABEL_VALUE}')
        total = 0
        for key, value in (self.annotations or {}).items():
            for p in _check_qualified_key(key.lower(), "annotation"):
                add(("annotations",), f'Invalid value: "{key}": {p}')
            total += len(key) + len(value)
        if total > 256 * 1024:
            add(("annotations",), f"Too long: may not be more than {256 * 1024} bytes")
        raise_errors("ObjectMeta", errors)
        return self


def _parse_time(s: str) -> Optional[datetime]:
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t


# --------------------------------------------------------------------------- resource
class _ObjectFace:
    """What typed resources and generic objects both offer: labels, annotations and the
    place they were loaded from. (Needs ``metadata`` and a ``_source`` private attribute.)"""

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.labels or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.annotations or {})

    @property
    def source(self) -> Optional[tuple[str, int]]:
        """(file, document index) this object was loaded from, if known."""
        return self._source

    def set_source(self, file: str, doc: int):
        self._source = (str(file), int(doc))
        return self


class Resource(_ObjectFace, GWModel):
    """Base of every top-level object gwlib understands (apiVersion, kind,
    metadata, spec, status).

    Subclasses declare ``api_version`` / ``kind`` as literals and their own
    ``spec``.  ``status`` is accepted and kept as a plain dict."""

    NAMESPACED: ClassVar[bool] = True
    #: which rule ``metadata.name`` must follow: "subdomain" (DNS-1123 subdomain,
    #: <=253), "label" (DNS-1123 label, <=63) or "label1035" (DNS-1035 label, <=63)
    NAME_RULE: ClassVar[str] = "subdomain"
    API_VERSION: ClassVar[str] = ""
    KIND: ClassVar[str] = ""

    api_version: str = Field(description="Versioned schema of this object (group/version).")
    kind: str = Field(description="Kind of this object.")
    metadata: ObjectMeta = Field(description="Standard object metadata; `name` is required.")
    status: Optional[dict[str, Any]] = Field(None, description="Observed state written by controllers "
                                                               "(accepted and kept, not validated).")

    _source: Optional[tuple[str, int]] = PrivateAttr(default=None)
    _channel: str = PrivateAttr(default="standard")

    # ---- validation hooks
    @model_validator(mode="before")
    @classmethod
    def _type_meta_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.API_VERSION and ("apiVersion" not in data and "api_version" not in data):
            data = {"apiVersion": cls.API_VERSION, **data}
        if isinstance(data, dict) and cls.KIND and ("kind" not in data):
            data = {**data, "kind": cls.KIND}
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _rules_of_every_node(cls, data: Any, handler, info: ValidationInfo) -> Any:
        """The second pass (see the module docstring): when validation failed,
        add the problems of the node rules that pydantic skipped because
        something below them was invalid."""
        try:
            return handler(data)
        except ValidationError as exc:
            if not isinstance(data, dict):
                raise
            first = exc.errors(include_url=False)
            blocking = any(e["type"] in BLOCKING_ERROR_TYPES for e in first)
            try:
                found = node_rule_errors(cls, data, channel_of(info), cel=not blocking)
            except Exception:  # noqa: BLE001 - the second pass may only add problems, never lose them
                raise exc from None
            if not found:
                raise
            known = {_error_key(e) for e in first}
            extra = []
            for err in ValidationError.from_exception_data(cls.__name__, found).errors(include_url=False):
                key = _error_key(err)
                if key not in known:
                    known.add(key)
                    extra.append(err)
            if not extra:
                raise
            raise_errors(exc.title, [_as_details(e) for e in first + extra])
            raise  # pragma: no cover

    @field_validator("api_version")
    @classmethod
    def _check_api_version(cls, v: str) -> str:
        if cls.API_VERSION and v != cls.API_VERSION:
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": repr(cls.API_VERSION)})
        return v

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, v: str) -> str:
        if cls.KIND and v != cls.KIND:
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": repr(cls.KIND)})
        return v

    @field_validator("metadata")
    @classmethod
    def _check_name(cls, meta: ObjectMeta) -> ObjectMeta:
        name = meta.name
        errors: list[InitErrorDetails] = []

        def add(msg: str) -> None:
            errors.append(InitErrorDetails(type=PydanticCustomError("invalid_value", "{message}",
                                                                    {"message": msg}), loc=("name",), input=name))

        if not name:
            if not meta.generate_name:
                add("name or generateName is required")
        elif cls.NAME_RULE == "label":
            if len(name) > 63:
                add(f'Invalid value: "{name}": must be no more than 63 characters')
            if not _RE_LABEL.match(name):
                add(f'Invalid value: "{name}": {_MSG_LABEL}')
        elif cls.NAME_RULE == "label1035":
            if len(name) > 63:
                add(f'Invalid value: "{name}": must be no more than 63 characters')
            if not _RE_1035.match(name):
                add(f'Invalid value: "{name}": {_MSG_1035}')
        elif cls.NAME_RULE == "subdomain":
            if len(name) > 253:
                add(f'Invalid value: "{name}": must be no more than 253 characters')
            if not _RE_SUBDOMAIN.match(name):
                add(f'Invalid value: "{name}": {_MSG_SUBDOMAIN}')
        raise_errors("metadata", errors)
        return meta

    @model_validator(mode="after")
    def _remember_channel(self, info: ValidationInfo) -> "Resource":
        self._channel = channel_of(info)
        return self

    # ---- convenience
    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> Optional[str]:
        if not self.NAMESPACED:
            return None
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.NAMESPACED else self.name

    @property
    def generation(self) -> int:
        return self.metadata.generation if self.metadata.generation is not None else 1

    @property
    def creation_timestamp(self) -> Optional[datetime]:
        ts = self.metadata.creation_timestamp
        return _parse_time(ts) if ts else None


    @property
    def channel(self) -> str:
        """The channel this object was validated for."""
        return self._channel

    def to_dict(self, defaults: bool = False) -> dict[str, Any]:
        """The object as JSON-compatible data with camelCase names.

        ``defaults=False`` gives back what was written (clean YAML);
        ``defaults=True`` gives the object as the API server stores it, every
        schema default made explicit."""
        if defaults:
            body = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        else:
            body = self.model_dump(by_alias=True, exclude_unset=True, mode="json")
        out: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind}
        out.update({k: v for k, v in body.items() if k not in ("apiVersion", "kind", "status")})
        if "status" in body:
            out["status"] = body["status"]
        return out

    def defaulted(self) -> "Resource":
        """A copy with every default explicit (``to_dict()`` of the copy equals
        ``to_dict(defaults=True)`` of this object)."""
        copy = type(self).model_validate(self.to_dict(defaults=True), context={"channel": self._channel})
        copy._source = self._source
        return copy

    def __repr__(self) -> str:  # short and useful in notebooks
        return f"<{self.kind} {self.key} ({self.api_version})>"


class LenientMeta(BaseModel):
    """Metadata of an object gwlib has no model for: the usual fields when
    they have the usual types, anything else kept as is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    name: Optional[str] = None
    namespace: Optional[str] = None
    labels: Optional[dict[str, str]] = None
    annotations: Optional[dict[str, str]] = None
    generation: Optional[int] = None
    creation_timestamp: Optional[Any] = None


def _lenient_meta(meta: Any) -> LenientMeta:
    if not isinstance(meta, dict):
        return LenientMeta()
    try:
        return LenientMeta.model_validate(meta)
    except ValidationError:
        name = meta.get("name")
        ns = meta.get("namespace")
        return LenientMeta(name=name if isinstance(name, str) else None,
                           namespace=ns if isinstance(ns, str) else None)


class GenericObject(_ObjectFace, BaseModel):
    """Any object gwlib has no model for (unknown apiVersion/kind).  The raw
    dict is kept in :attr:`raw`; metadata is parsed leniently."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, arbitrary_types_allowed=True)

    NAMESPACED: ClassVar[bool] = True

    api_version: str = Field("", alias="apiVersion")
    kind: str = ""
    metadata: LenientMeta = Field(default_factory=LenientMeta)
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)

    _source: Optional[tuple[str, int]] = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        if isinstance(data, dict) and "raw" not in data:
            meta = data.get("metadata")
            return {"apiVersion": str(data.get("apiVersion") or ""), "kind": str(data.get("kind") or ""),
                    "metadata": _lenient_meta(meta), "raw": data}
        return data

    @property
    def spec(self) -> Any:
        return self.raw.get("spec")

    @property
    def status(self) -> Any:
        return self.raw.get("status")

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> Optional[str]:
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def generation(self) -> int:
        g = self.metadata.generation
        return g if isinstance(g, int) and not isinstance(g, bool) else 1

    @property
    def creation_timestamp(self) -> Optional[datetime]:
        ts = self.metadata.creation_timestamp
        if isinstance(ts, datetime):
            return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
        return _parse_time(ts) if isinstance(ts, str) and ts else None


    def to_dict(self, defaults: bool = False) -> dict[str, Any]:
        return self.raw

    def defaulted(self) -> "GenericObject":
        return self

    def __repr__(self) -> str:
        return f"<{self.kind or 'Object'} {self.key} ({self.api_version})>"
