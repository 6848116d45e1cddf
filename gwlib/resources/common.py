"""Types shared by the Gateway API kinds (apis/v1 shared_types.go and
object_reference_types.go of Gateway API v1.6.1), re-expressed as pydantic
models with the same schema constraints, defaults and CEL rules."""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, StringConstraints
from pydantic_core import InitErrorDetails, PydanticCustomError

from .base import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    EXPERIMENTAL,
    ExperimentalOnly,
    GWModel,
    cel_error,
    channel_of,
)

GATEWAY_GROUP = "gateway.networking.k8s.io"

# --------------------------------------------------------------------------- scalar types
#: Kubernetes API group: empty (core) or an RFC 1123 subdomain.
Group = Annotated[str, StringConstraints(
    max_length=253, pattern=r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
#: Kubernetes kind, e.g. ``Service``.
Kind = Annotated[str, StringConstraints(min_length=1, max_length=63,
                                        pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")]
#: Name of a Kubernetes object.
ObjectName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
#: Name of a namespace (RFC 1123 label).
Namespace = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
#: Name of a section: a listener name, a rule name or a Service port name.
SectionName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
HOSTNAME_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: Hostname, optionally with a leading ``*.`` wildcard label; no IPs.
Hostname = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=HOSTNAME_PATTERN)]
#: Hostname without wildcard.
PreciseHostname = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
#: TCP/UDP port number.
PortNumber = Annotated[int, Field(ge=1, le=65535)]
#: HTTP header (or query parameter) name.
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=256,
                                              pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$")]
#: GEP-2257 duration, e.g. ``1h``, ``10s``, ``500ms``, ``1m30s``.
Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")]
#: Name of a Gateway API controller: a domain-prefixed path.
GatewayController = Annotated[str, StringConstraints(
    min_length=1, max_length=253,
    pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$")]
AnnotationValue = Annotated[str, StringConstraints(max_length=4096)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
AddressType = Annotated[str, StringConstraints(
    min_length=1, max_length=253,
    pattern=r"^Hostname|IPAddress|NamedAddress|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$")]
#: Header value; the experimental CRD additionally requires printable ASCII.
HEADER_VALUE_PATTERN = r"^[!-~]+([\t ]?[!-~]+)*$"
_RE_HEADER_VALUE = re.compile(HEADER_VALUE_PATTERN)

_DURATION_PART = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


def duration_ms(value: str) -> int:
    """Milliseconds in a GEP-2257 duration (``"1m30s"`` -> 90000)."""
    return sum(int(n) * _UNIT_MS[u] for n, u in _DURATION_PART.findall(value))


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def check_header_value(value: str, info) -> str:
    """Experimental channel only: header values must be printable ASCII,
    optionally separated by single spaces or tabs."""
    if channel_of(info) == "experimental" and not _RE_HEADER_VALUE.match(value):
        raise PydanticCustomError("string_pattern_mismatch", "String should match pattern '{pattern}'",
                                  {"pattern": HEADER_VALUE_PATTERN})
    return value


# --------------------------------------------------------------------------- references
class ParentReference(GWModel):
    """Names a parent a Route wants to attach to: usually a Gateway (Gateway
    conformance profile), or a Service (Mesh/GAMMA profile, ClusterIP only).
    The group and kind must be registered in the cluster."""

    group: Optional[Group] = Field(
        GATEWAY_GROUP,
        description="API group of the parent. Default `gateway.networking.k8s.io`; set it to `\"\"` "
                    "(the core group) to name a Service. Support: Core.")
    kind: Optional[Kind] = Field(
        "Gateway",
        description="Kind of the parent. Default `Gateway`. Gateway (Gateway profile) and Service "
                    "(Mesh profile) have Core support; other kinds are Implementation-specific.")
    namespace: Optional[Namespace] = Field(
        None,
        description="Namespace of the parent; when omitted, the Route's own namespace. Attaching to "
                    "a Gateway in another namespace is allowed only if that Gateway's listener "
                    "`allowedRoutes` admits the Route. For a Service parent, the same namespace "
                    "makes a 'producer' route (applies to traffic from every namespace) and "
                    "another namespace makes a 'consumer' route (applies only to traffic from the "
                    "Route's namespace). Support: Core.")
    name: ObjectName = Field(description="Name of the parent object. Required. Support: Core.")
    section_name: Optional[SectionName] = Field(
        None,
        description="A section of the parent: the listener name of a Gateway, or the port name of "
                    "a Service. When omitted, the whole parent is meant; the Route counts as "
                    "attached if at least one section accepts it. When `port` is also set, both "
                    "must match the same listener. Support: Core.")
    port: Optional[PortNumber] = Field(
        None,
        description="Network port of the parent the Route targets: for a Gateway, every listener on "
                    "that port that accepts this kind of Route; for a Service, that Service port. "
                    "Prefer `sectionName` unless the behaviour must follow a port. With "
                    "`sectionName`, both must match. Support: Extended.")


class BackendObjectReference(GWModel):
    """Points at a backend, by default a Kubernetes Service in the Route's
    namespace.  A reference to another namespace needs a ReferenceGrant there.
    CEL: a Service reference must carry a port."""

    group: Optional[Group] = Field(
        "", description="API group of the backend. Default `\"\"` (the core group, for Service).")
    kind: Optional[Kind] = Field(
        "Service",
        description="Kind of the backend. Default `Service`. Support: Core for Services that are not "
                    "of type ExternalName; Implementation-specific for ExternalName Services (which "
                    "implementations SHOULD NOT support) and other kinds.")
    name: ObjectName = Field(description="Name of the backend object. Required.")
    namespace: Optional[Namespace] = Field(
        None,
        description="Namespace of the backend; when omitted, the Route's namespace. Another namespace "
                    "must allow the reference with a ReferenceGrant. Support: Core.")
    port: Optional[PortNumber] = Field(
        None,
        description="Destination port. Required when the backend is a Service; it is the Service "
                    "port, not the target port of the pods. Other kinds may derive it themselves.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if (self.group or "") == "" and self.kind == "Service" and self.port is None:
            return [cel_error("Must have port for Service reference")]
        return []


class BackendRef(BackendObjectReference):
    """A backend plus the share of traffic it receives."""

    weight: Optional[Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        1,
        description="Relative share of requests for this backend: weight / (sum of the weights in the "
                    "list). Not a percentage; the sum need not be 100. Weight 0 sends no traffic to "
                    "this entry. Default 1, range 0-1,000,000. Support varies with the context "
                    "where it is used (Core for HTTPRoute and GRPCRoute).")


class LocalObjectReference(GWModel):
    """Names an object in the referrer's own namespace (used by `extensionRef`)."""

    group: Group = Field(description="API group of the object; `\"\"` is the core group. Required.")
    kind: Kind = Field(description="Kind of the object, e.g. `HTTPRoute` or `Service`. Required.")
    name: ObjectName = Field(description="Name of the object. Required.")


class SecretObjectReference(GWModel):
    """Names an object that holds TLS material, by default a Secret in the
    referrer's namespace.  Another namespace needs a ReferenceGrant."""

    group: Optional[Group] = Field("", description="API group of the object. Default `\"\"` (core).")
    kind: Optional[Kind] = Field("Secret", description="Kind of the object. Default `Secret`.")
    name: ObjectName = Field(description="Name of the object. Required.")
    namespace: Optional[Namespace] = Field(
        None, description="Namespace of the object; when omitted, the referrer's namespace. Another "
                          "namespace must allow the reference with a ReferenceGrant. Support: Core.")


class ObjectReference(GWModel):
    """Names an object including its namespace (used for CA certificates)."""

    group: Group = Field(description="API group of the object; `\"\"` is the core group. Required.")
    kind: Kind = Field(description="Kind of the object, e.g. `ConfigMap`. Required.")
    name: ObjectName = Field(description="Name of the object. Required.")
    namespace: Optional[Namespace] = Field(
        None, description="Namespace of the object; when omitted, the referrer's namespace. Another "
                          "namespace must allow the reference with a ReferenceGrant. Support: Core.")


# --------------------------------------------------------------------------- selectors
class LabelSelectorRequirement(GWModel):
    """One set-based selector requirement."""

    key: str = Field(description="Label key the requirement applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist.")
    values: Optional[list[str]] = Field(
        None, description="Values for In/NotIn (must be non-empty there); empty for Exists/DoesNotExist.")


class LabelSelector(GWModel):
    """Standard Kubernetes label selector; all requirements are ANDed."""

    match_labels: Optional[dict[str, str]] = Field(None, description="Labels that must all be present with these values.")
    match_expressions: Optional[list[LabelSelectorRequirement]] = Field(
        None, description="Set-based requirements that must all hold.")


# --------------------------------------------------------------------------- misc shared
class Fraction(GWModel):
    """A ratio `numerator / denominator`. CEL: numerator <= denominator."""

    numerator: Annotated[int, Field(ge=0)] = Field(description="Numerator of the fraction (>= 0). Required.")
    denominator: Optional[Annotated[int, Field(ge=1)]] = Field(100, description="Denominator (>= 1). Default 100.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if self.numerator > (self.denominator if self.denominator is not None else 100):
            return [cel_error("numerator must be less than or equal to denominator")]
        return []


class CookieConfig(GWModel):
    """Settings that apply only to cookie-based session persistence."""

    lifetime_type: Optional[Literal["Permanent", "Session"]] = Field(
        "Session",
        description="Whether the cookie is a session cookie (deleted when the client session ends) "
                    "or permanent (expires after `absoluteTimeout`, which is then required). "
                    "Default `Session`. Support: Core for Session, Extended for Permanent.")


class SessionPersistence(GWModel):
    """Keeps a client on the same backend endpoint across requests, using a
    cookie or a header. Experimental channel only."""

    session_name: Optional[Annotated[str, StringConstraints(max_length=128)]] = Field(
        None, description="Name of the cookie or header that carries the session token (max 128 "
                          "characters). Support: Implementation-specific.")
    absolute_timeout: Optional[Duration] = Field(
        None, description="The session ends this long after it started, whatever the activity. "
                          "Support: Extended.")
    idle_timeout: Optional[Duration] = Field(
        None, description="The session ends after being idle this long. Support: Extended.")
    type: Optional[Literal["Cookie", "Header"]] = Field(
        "Cookie", description="How the session is tracked: `Cookie` (default; Support: Core) or "
                              "`Header` (Support: Extended).")
    cookie_config: Optional[CookieConfig] = Field(
        None, description="Cookie-specific settings; only with type Cookie. Support: Core.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        errors = []
        cc = self.cookie_config
        if cc is not None and cc.lifetime_type == "Permanent" and self.absolute_timeout is None:
            errors.append(cel_error("AbsoluteTimeout must be specified when cookie lifetimeType is Permanent"))
        if cc is not None and self.type != "Cookie":
            errors.append(cel_error("cookieConfig can only be set with type Cookie"))
        return errors


# --------------------------------------------------------------------------- route spec base
def _empty(v: Any) -> bool:
    return v is None or v == "" or v == 0


def parent_ref_errors(refs: Optional[list[ParentReference]], channel: str) -> list[InitErrorDetails]:
    """The CEL rules upstream puts on ``spec.parentRefs`` (reported at that list)."""
    if not refs:
        return []

    def same_parent(p1: ParentReference, p2: ParentReference) -> bool:
        if not (p1.group == p2.group and p1.kind == p2.kind and p1.name == p2.name):
            return False
        n1, n2 = p1.namespace, p2.namespace
        return (_empty(n1) and _empty(n2)) or (n1 is not None and n2 is not None and n1 == n2)

    def same_section(p1, p2) -> bool:
        s1, s2 = p1.section_name, p2.section_name
        return (_empty(s1) and _empty(s2)) or (s1 is not None and s2 is not None and s1 == s2)

    def same_port(p1, p2) -> bool:
        a, b = p1.port, p2.port
        return (_empty(a) and _empty(b)) or (a is not None and b is not None and a == b)

    errors = []
    if channel == "experimental":
        spec_ok = all(
            (_empty(p1.section_name) == _empty(p2.section_name) and _empty(p1.port) == _empty(p2.port))
            for p1 in refs for p2 in refs if same_parent(p1, p2))
        uniq_ok = all(
            sum(1 for p2 in refs if same_parent(p1, p2) and same_section(p1, p2) and same_port(p1, p2)) == 1
            for p1 in refs)
        if not spec_ok:
            errors.append(cel_error("sectionName or port must be specified when parentRefs includes 2 or "
                                    "more references to the same parent", ".parentRefs", node_type="array"))
        if not uniq_ok:
            errors.append(cel_error("sectionName or port must be unique when parentRefs includes 2 or more "
                                    "references to the same parent", ".parentRefs", node_type="array"))
    else:
        spec_ok = all(_empty(p1.section_name) == _empty(p2.section_name)
                      for p1 in refs for p2 in refs if same_parent(p1, p2))
        uniq_ok = all(sum(1 for p2 in refs if same_parent(p1, p2) and same_section(p1, p2)) == 1
                      for p1 in refs)
        if not spec_ok:
            errors.append(cel_error("sectionName must be specified when parentRefs includes 2 or more "
                                    "references to the same parent", ".parentRefs", node_type="array"))
        if not uniq_ok:
            errors.append(cel_error("sectionName must be unique when parentRefs includes 2 or more "
                                    "references to the same parent", ".parentRefs", node_type="array"))
    return errors


PARENT_REFS_DESCRIPTION = (
    "Parents (usually Gateways, or Services for mesh routing) this Route wants to attach to; the parent "
    "must also allow the attachment (for a Gateway: a listener's `allowedRoutes` must admit this Route's "
    "kind and namespace). Entries must be distinct: references to the same parent must each set "
    "`sectionName` (and/or `port` in the experimental channel) to different values. Attaching to a "
    "Gateway in another namespace needs no ReferenceGrant, and ReferenceGrant does not apply to Service "
    "parents. At most 32 entries.")

USE_DEFAULT_GATEWAYS_DESCRIPTION = (
    "Asks to be attached to the default Gateway(s) that claim this scope (`All`); unset or `None` means "
    "no default Gateway. Use with care: which Gateways are defaults can change without the Route's owner "
    "knowing. Channel: experimental only.")


class CommonRouteSpec(GWModel):
    """Fields every Route kind has: where it attaches."""

    parent_refs: Optional[Annotated[list[ParentReference], Field(max_length=32)]] = Field(
        None, description=PARENT_REFS_DESCRIPTION)
    use_default_gateways: Annotated[Optional[Literal["All", "None"]], ExperimentalOnly] = Field(
        None, description=USE_DEFAULT_GATEWAYS_DESCRIPTION, json_schema_extra=EXPERIMENTAL)

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return parent_ref_errors(self.parent_refs, channel)


def rule_name_unique(rules: Optional[list], channel: str) -> list[InitErrorDetails]:
    """Experimental channel only: rule names must be unique (``spec.rules``)."""
    if channel != "experimental" or not rules:
        return []
    names = [r.name for r in rules if r.name is not None]
    if len(names) != len(set(names)):
        return [cel_error("Rule name must be unique within the route", ".rules", node_type="array")]
    return []


def total_matches(rules: Optional[list], absent: int = 1) -> list[InitErrorDetails]:
    """``spec.rules``: at most 128 matches across all rules (absent matches
    count as ``absent``: 1 for HTTPRoute, whose default is one match)."""
    if not rules:
        return []
    total = sum(len(r.matches) if r.matches is not None else absent for r in rules[:16])
    if total > 128:
        return [cel_error("While 16 rules and 64 matches per rule are allowed, the total number of "
                          "matches across all rules in a route must be less than 128", ".rules",
                          node_type="array")]
    return []


