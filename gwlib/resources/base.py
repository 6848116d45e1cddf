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
the location.  Duplicate list-map keys are reported *at the later duplicate item*
(``spec.listeners[1]``), exactly like ``kubectl`` shows ``Duplicate value``.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Optional, get_args

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
              loc: tuple = ()) -> InitErrorDetails:
    """One failed CEL rule, as an error line for :func:`raise_errors`.

    ``message`` is the upstream rule message, verbatim.  ``field_path`` is the
    upstream ``fieldPath`` of the rule, or (for rules that upstream puts on a
    list node) the path of that list relative to the raising model."""
    ctx: dict[str, Any] = {"message": message}
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
    server reports it."""
    if not items or len(items) < 2:
        return []
    attrs = [to_snake(k) for k in keys]
    seen: set = set()
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
        if marker in seen:
            errors.append(InitErrorDetails(
                type=PydanticCustomError("duplicate", "Duplicate value: {value}", {"value": _key_repr(shown)}),
                loc=(alias, i) if alias else (i,), input=item if not isinstance(item, BaseModel) else None))
        else:
            seen.add(marker)
    return errors


def _as_details(err: dict) -> InitErrorDetails:
    """Turn one line of ``ValidationError.errors()`` back into error details."""
    t = err["type"]
    ctx = err.get("ctx")
    if t in _KNOWN_ERROR_TYPES:
        d = InitErrorDetails(type=t, loc=tuple(err["loc"]), input=err.get("input"))
        if ctx:
            d["ctx"] = ctx
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
        errors: list[InitErrorDetails] = []
        for attr, keys in self.LIST_KEYS.items():
            field = type(self).model_fields[attr]
            errors.extend(dup_errors(getattr(self, attr), keys, field.alias or attr))
        errors.extend(self._cel(channel_of(info)))
        if errors:
            raise_errors(type(self).__name__, errors)
        return self

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        """CEL rules of this schema node; subclasses return the failures."""
        return []


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
