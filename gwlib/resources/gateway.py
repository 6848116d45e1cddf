"""GatewayClass and Gateway (gateway.networking.k8s.io v1 and v1beta1) as in
Gateway API v1.6.1."""
from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Optional

from pydantic import Field, StringConstraints
from pydantic_core import InitErrorDetails

from .base import EXPERIMENTAL, ExperimentalOnly, GWModel, Resource, cel_error
from .common import (
    GATEWAY_GROUP,
    HOSTNAME_PATTERN,
    AddressType,
    AnnotationValue,
    GatewayController,
    Group,
    Hostname,
    Kind,
    LabelSelector,
    LabelValue,
    Namespace,
    ObjectName,
    ObjectReference,
    PortNumber,
    SecretObjectReference,
    SectionName,
)

_RE_HOSTNAME = re.compile(HOSTNAME_PATTERN)
_RE_QUALIFIED_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")


# =========================================================================== GatewayClass
class ParametersReference(GWModel):
    """Points to a cluster-wide or namespaced object with controller-specific
    configuration for a GatewayClass."""

    group: Group = Field(description="API group of the object. Required.")
    kind: Kind = Field(description="Kind of the object, e.g. `ConfigMap`. Required.")
    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the object. Required.")
    namespace: Optional[Namespace] = Field(
        None, description="Namespace of the object: required for a namespaced kind, unset for a "
                          "cluster-scoped one.")


class GatewayClassSpec(GWModel):
    """Configuration of a class of Gateways."""

    controller_name: GatewayController = Field(
        description="The controller that manages Gateways of this class, a domain-prefixed path such as "
                    "`example.net/gateway-controller`. Cannot be changed after creation (CEL `Value is "
                    "immutable`). Required. Support: Core.")
    parameters_ref: Optional[ParametersReference] = Field(
        None, description="Controller-specific configuration for the class (e.g. a ConfigMap or a custom "
                          "resource). If it cannot be found, the class's Accepted condition is False with "
                          "reason InvalidParameters. A Gateway may add its own `infrastructure."
                          "parametersRef`; merging is implementation-specific. Support: "
                          "Implementation-specific.")
    description: Optional[Annotated[str, StringConstraints(max_length=64)]] = Field(
        None, description="Human-readable description of the class (max 64 characters).")


class GatewayClass(Resource):
    """A kind of Gateway offered in the cluster, bound to one controller
    (`spec.controllerName`). Cluster-scoped. Gateways name their class in
    `spec.gatewayClassName`; the controller reports `Accepted` in its status."""

    NAMESPACED: ClassVar[bool] = False
    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "GatewayClass"

    spec: GatewayClassSpec = Field(description="Desired state of the GatewayClass. Required.")


class GatewayClassV1Beta1(GatewayClass):
    """GatewayClass served as `gateway.networking.k8s.io/v1beta1` (same schema as v1)."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1beta1"


# =========================================================================== Gateway
class RouteGroupKind(GWModel):
    """A kind of Route."""

    group: Optional[Group] = Field(GATEWAY_GROUP, description="API group of the Route kind. Default "
                                                              "`gateway.networking.k8s.io`.")
    kind: Kind = Field(description="Route kind, e.g. `HTTPRoute`. Required.")


class RouteNamespaces(GWModel):
    """Which namespaces Routes may attach from."""

    from_: Optional[Literal["All", "Selector", "Same"]] = Field(
        "Same", alias="from",
        description="`All` namespaces, namespaces chosen by `selector` (`Selector`), or only the "
                    "Gateway's own namespace (`Same`, the default). Support: Core.")
    selector: Optional[LabelSelector] = Field(
        None, description="Label selector on namespaces, used only when `from` is `Selector`. Support: Core.")


def _default_route_namespaces() -> RouteNamespaces:
    return RouteNamespaces(from_="Same")


class AllowedRoutes(GWModel):
    """Which Routes may attach to a listener."""

    namespaces: Optional[RouteNamespaces] = Field(
        default_factory=_default_route_namespaces,
        description="Namespaces Routes may attach from. Default `{from: Same}` (the Gateway's namespace). "
                    "Support: Core.")
    kinds: Optional[Annotated[list[RouteGroupKind], Field(max_length=8)]] = Field(
        None, description="Route kinds allowed to attach. When empty, the kinds follow from the listener "
                          "protocol (e.g. HTTPRoute for HTTP). A kind the implementation does not support "
                          "sets the listener's ResolvedRefs to False (reason InvalidRouteKinds). At most 8. "
                          "Support: Core.")


def _default_allowed_routes() -> AllowedRoutes:
    return AllowedRoutes(namespaces=_default_route_namespaces())


class ListenerTLSConfig(GWModel):
    """TLS settings of a listener. CEL: Terminate needs certificateRefs or
    options."""

    mode: Optional[Literal["Terminate", "Passthrough"]] = Field(
        "Terminate",
        description="`Terminate` (default): the Gateway ends the client's TLS session using "
                    "`certificateRefs`. `Passthrough`: the stream is passed on encrypted; only the "
                    "ClientHello (SNI) is read, and only TLSRoute can use it. Support: Core.")
    certificate_refs: Optional[Annotated[list[SecretObjectReference], Field(max_length=64)]] = Field(
        None, description="Certificates and keys (usually `kubernetes.io/tls` Secrets) used for handshakes "
                          "on this listener; needed in Terminate mode. Another namespace needs a "
                          "ReferenceGrant, else the listener's ResolvedRefs is False (RefNotPermitted). "
                          "At most 64. Support: Core for one Secret, Implementation-specific for more or "
                          "other kinds.")
    options: Optional[Annotated[dict[str, AnnotationValue], Field(max_length=16)]] = Field(
        None, description="Implementation-specific TLS settings (e.g. minimum version, ciphers) as "
                          "domain-prefixed keys. At most 16. Support: Implementation-specific.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if (self.mode or "Terminate") == "Terminate" and not self.certificate_refs and not self.options:
            return [cel_error("certificateRefs or options must be specified when mode is Terminate")]
        return []


ProtocolType = Annotated[str, StringConstraints(
    min_length=1, max_length=255,
    pattern=r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$")]


class Listener(GWModel):
    """A logical endpoint where the Gateway accepts connections: a port, a
    protocol, optionally a hostname and TLS, and which Routes may attach."""

    name: SectionName = Field(description="Name of the listener, unique within the Gateway; Routes "
                                          "target it with `parentRefs[].sectionName`. Required. Support: Core.")
    hostname: Optional[Hostname] = Field(
        None, description="Virtual hostname to match (SNI for TLS, Host header for HTTP, both for HTTPS); "
                          "unset matches all. A leading `*.` matches any subdomain. Not allowed for TCP "
                          "and UDP. Routes with hostnames must intersect with it. Support: Core.")
    port: PortNumber = Field(description="Network port. Several listeners may share a port if they stay "
                                         "distinct. Required. Support: Core.")
    protocol: ProtocolType = Field(
        description="Protocol expected on the port: HTTP, HTTPS, TLS, TCP, UDP, or a domain-prefixed "
                    "implementation-specific name. An unsupported protocol sets the listener's Accepted "
                    "to False (UnsupportedProtocol). Required. Support: Core.")
    tls: Optional[ListenerTLSConfig] = Field(
        None, description="TLS settings, for HTTPS and TLS listeners only (not allowed for HTTP, TCP, UDP). "
                          "Certificates are chosen by the longest matching SNI. Support: Core.")
    allowed_routes: Optional[AllowedRoutes] = Field(
        default_factory=_default_allowed_routes,
        description="Kinds and namespaces of Routes that may attach. Default `{namespaces: {from: Same}}`. "
                    "Support: Core.")


class GatewaySpecAddress(GWModel):
    """An address requested for the Gateway. CEL: a Hostname value must be a
    valid hostname."""

    type: Optional[AddressType] = Field(
        "IPAddress", description="Kind of address: `IPAddress` (default), `Hostname`, or a domain-prefixed "
                                 "implementation-specific type. Support: Extended.")
    value: Optional[Annotated[str, StringConstraints(max_length=253)]] = Field(
        None, description="The address, e.g. `1.2.3.4` or `lb.example.com`. When empty, the implementation "
                          "should pick one of the type (or report Programmed=False, AddressNotAssigned).")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if self.type == "Hostname" and self.value is not None and not _RE_HOSTNAME.match(self.value):
            return [cel_error("Hostname value must be empty or contain only valid characters (matching "
                              + HOSTNAME_PATTERN + ")")]
        return []


class LocalParametersReference(GWModel):
    """Points to a configuration object in the Gateway's namespace."""

    group: Group = Field(description="API group of the object. Required.")
    kind: Kind = Field(description="Kind of the object. Required.")
    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Name of the object. Required.")


def _key_errors(mapping: Optional[dict], what: str, path: str) -> list[InitErrorDetails]:
    if not mapping:
        return []
    e = []
    cap = what.capitalize()
    if not all(_RE_QUALIFIED_KEY.match(k) for k in mapping):
        e.append(cel_error(f"{cap} keys must be in the form of an optional DNS subdomain prefix followed by "
                           "a required name segment of up to 63 characters.", path))
    if not all(len(k.split("/")[0]) < 253 for k in mapping):
        e.append(cel_error(f"If specified, the {what} key's prefix must be a DNS subdomain not longer than "
                           "253 characters in total.", path))
    return e


class GatewayInfrastructure(GWModel):
    """Attributes for the infrastructure created for this Gateway. Support:
    Extended."""

    labels: Optional[Annotated[dict[str, LabelValue], Field(max_length=8)]] = Field(
        None, description="Labels to put on resources created for this Gateway (e.g. its Pods or "
                          "Service). Keys are qualified names; at most 8. Support: Extended.")
    annotations: Optional[Annotated[dict[str, AnnotationValue], Field(max_length=8)]] = Field(
        None, description="Annotations to put on resources created for this Gateway. Keys are qualified "
                          "names; at most 8. Support: Extended.")
    parameters_ref: Optional[LocalParametersReference] = Field(
        None, description="Per-Gateway configuration object, like the class's parametersRef; if invalid, "
                          "the Gateway should get Accepted=False (InvalidParameters). Support: "
                          "Implementation-specific.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return _key_errors(self.labels, "label", ".labels") + _key_errors(self.annotations, "annotation",
                                                                           ".annotations")


class ListenerNamespaces(GWModel):
    """Which namespaces ListenerSets may attach from."""

    from_: Optional[Literal["All", "Selector", "Same", "None"]] = Field(
        "None", alias="from",
        description="`All`, `Selector`, `Same` (the Gateway's namespace) or `None` (default: only the "
                    "Gateway's own listeners).")
    selector: Optional[LabelSelector] = Field(
        None, description="Label selector on namespaces, used only when `from` is `Selector`.")


def _default_listener_namespaces() -> ListenerNamespaces:
    return ListenerNamespaces(from_="None")


class AllowedListeners(GWModel):
    """Which ListenerSets may add listeners to this Gateway."""

    namespaces: Optional[ListenerNamespaces] = Field(
        default_factory=_default_listener_namespaces,
        description="Namespaces ListenerSets may attach from. Default `{from: None}` (none).")


class GatewayBackendTLS(GWModel):
    """TLS settings for the Gateway as a client of backends."""

    client_certificate_ref: Optional[SecretObjectReference] = Field(
        None, description="Client certificate and key the Gateway presents to backends (a "
                          "`kubernetes.io/tls` Secret has Core support). Invalid or not permitted refs set "
                          "the Gateway's ResolvedRefs to False (InvalidClientCertificateRef / RefNotPermitted).")


class FrontendTLSValidation(GWModel):
    """How client certificates are checked (mutual TLS)."""

    ca_certificate_refs: Annotated[list[ObjectReference], Field(min_length=1, max_length=8)] = Field(
        description="CA certificates trusted to verify client certificates (a ConfigMap with key `ca.crt` "
                    "has Core support). Another namespace needs a ReferenceGrant. 1-8. Required. "
                    "Support: Core.")
    mode: Optional[Literal["AllowValidOnly", "AllowInsecureFallback"]] = Field(
        "AllowValidOnly", description="`AllowValidOnly` (default; Core): only clients with a valid "
                                      "certificate connect. `AllowInsecureFallback` (Extended): clients "
                                      "without or with an invalid certificate are let in too.")


class TLSConfig(GWModel):
    """TLS settings shared by the HTTPS listeners they apply to."""

    validation: Optional[FrontendTLSValidation] = Field(
        None, description="Client certificate validation (mutual TLS). Support: Core.")


class TLSPortConfig(GWModel):
    """TLS settings for the HTTPS listeners on one port."""

    port: PortNumber = Field(description="Port whose HTTPS listeners use this configuration. Required.")
    tls: TLSConfig = Field(description="The configuration for that port. Required.")


class FrontendTLSConfig(GWModel):
    """TLS settings for clients connecting to the Gateway. CEL: perPort ports
    unique."""

    default: TLSConfig = Field(description="Settings for every HTTPS listener without a per-port "
                                           "override. Required. Support: Core.")
    LIST_KEYS: ClassVar[dict] = {"per_port": ("port",)}

    per_port: Optional[Annotated[list[TLSPortConfig], Field(max_length=64)]] = Field(
        None, description="Overrides for the HTTPS listeners of given ports (list-map key `port`). "
                          "At most 64. Support: Core.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        ports = [p.port for p in self.per_port or []]
        if len(ports) != len(set(ports)):
            return [cel_error("Port for TLS configuration must be unique within the Gateway", ".perPort",
                              node_type="array")]
        return []


class GatewayTLSConfig(GWModel):
    """Gateway-wide TLS settings. Support: Extended."""

    backend: Optional[GatewayBackendTLS] = Field(
        None, description="TLS settings when the Gateway connects to backends (which backends use TLS is "
                          "decided by BackendTLSPolicy). Support: Core.")
    frontend: Optional[FrontendTLSConfig] = Field(
        None, description="TLS settings for clients connecting to the Gateway, such as client "
                          "certificate validation. Support: Core.")


def _listener_errors(listeners: list[Listener]) -> list[InitErrorDetails]:
    """CEL rules upstream puts on the ``spec.listeners`` list (printed as ``"array"``)."""
    e = []
    p = ".listeners"
    if not all((l.tls is None) for l in listeners if l.protocol in ("HTTP", "TCP", "UDP")):
        e.append(cel_error("tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']", p, node_type="array"))
    if not all(l.tls.mode in (None, "", "Terminate") for l in listeners
               if l.protocol == "HTTPS" and l.tls is not None):
        e.append(cel_error("tls mode must be Terminate for protocol HTTPS", p, node_type="array"))
    if not all(l.tls is not None and l.tls.mode not in (None, "") for l in listeners if l.protocol == "TLS"):
        e.append(cel_error("tls mode must be set for protocol TLS", p, node_type="array"))
    if not all(l.hostname in (None, "") for l in listeners if l.protocol in ("TCP", "UDP")):
        e.append(cel_error("hostname must not be specified for protocols ['TCP', 'UDP']", p, node_type="array"))
    names = [l.name for l in listeners]
    if len(names) != len(set(names)):
        e.append(cel_error("Listener name must be unique within the Gateway", p, node_type="array"))
    combos = [(l.port, l.protocol, l.hostname) for l in listeners]
    if len(combos) != len(set(combos)):
        e.append(cel_error("Combination of port, protocol and hostname must be unique for each listener", p,
                           node_type="array"))
    return e


def _address_errors(addresses: Optional[list[GatewaySpecAddress]]) -> list[InitErrorDetails]:
    e = []
    if not addresses:
        return e
    for t, msg in (("IPAddress", "IPAddress values must be unique"), ("Hostname", "Hostname values must be unique")):
        values = [a.value for a in addresses if a.type == t and a.value is not None]
        if len(values) != len(set(values)):
            e.append(cel_error(msg, ".addresses", node_type="array"))
    return e


class GatewaySpec(GWModel):
    """Desired state of a Gateway. Some invalid combinations are only reported
    in status, not rejected by the API server."""

    gateway_class_name: ObjectName = Field(
        description="Name of the GatewayClass this Gateway belongs to. Required.")
    LIST_KEYS: ClassVar[dict] = {"listeners": ("name",)}

    listeners: Annotated[list[Listener], Field(min_length=1, max_length=64)] = Field(
        description="Listeners bound to the Gateway's addresses (list-map key `name`, 1-64). Each must be "
                    "distinct: HTTP, HTTPS and TLS listeners by port and hostname, TCP and UDP by port; "
                    "conflicting ones get Conflicted=True and are not served. Requests go to the most "
                    "specific listener hostname: exact before wildcard before none. Core combinations: "
                    "HTTPRoute on HTTP/80 and HTTPS/443 (Terminate), TLSRoute on TLS/443 (Passthrough). "
                    "Required. Support: Core.")
    addresses: Optional[Annotated[list[GatewaySpecAddress], Field(max_length=16)]] = Field(
        None, description="Addresses requested for the Gateway (external side, e.g. a load balancer IP). "
                          "When empty the implementation assigns them; unusable ones are reported in "
                          "status. Values of each type must be unique. At most 16. Support: Extended.")
    infrastructure: Optional[GatewayInfrastructure] = Field(
        None, description="Labels, annotations and parameters for resources created for this Gateway. "
                          "Support: Extended.")
    allowed_listeners: Optional[AllowedListeners] = Field(
        None, description="Which ListenerSets may attach listeners to this Gateway; by default none.")
    tls: Optional[GatewayTLSConfig] = Field(
        None, description="Gateway-wide TLS settings: client certificate validation for clients, and the "
                          "client certificate used towards backends. Support: Extended.")
    default_scope: Annotated[Optional[Literal["All", "None"]], ExperimentalOnly] = Field(
        None, description="Makes this a default Gateway that claims Routes asking for "
                          "`useDefaultGateways` with this scope (`All`); unset or `None` means not a "
                          "default. Channel: experimental only.", json_schema_extra=EXPERIMENTAL)

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return _listener_errors(self.listeners) + _address_errors(self.addresses)


class Gateway(Resource):
    """An instance of traffic-handling infrastructure: binds listeners (port,
    protocol, hostname, TLS) to addresses, for a GatewayClass. Routes attach to
    its listeners."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "Gateway"

    spec: GatewaySpec = Field(description="Desired state of the Gateway. Required.")


class GatewayV1Beta1(Gateway):
    """Gateway served as `gateway.networking.k8s.io/v1beta1` (same schema as v1)."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1beta1"

