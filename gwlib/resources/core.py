"""Core Kubernetes objects used beside the Gateway API: Namespace, Service,
Secret, Deployment (apps/v1) and Ingress (networking.k8s.io/v1).  The schemas
cover what the notebooks use, with the API server's main checks; the pod
template of a Deployment is permissive."""
from __future__ import annotations

import base64
import re
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import AfterValidator, ConfigDict, Field, PlainValidator, StringConstraints, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .base import DNS1123_LABEL, DNS1123_SUBDOMAIN, GWModel, Resource, raise_errors
from .common import LabelSelector

_RE_IANA = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RE_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _port_range(v: int) -> int:
    if not 1 <= v <= 65535:
        raise PydanticCustomError("invalid_value", "Invalid value: {value}: must be between 1 and 65535, inclusive",
                                  {"value": v})
    return v


#: a port number with the API server's core-validation message
Port = Annotated[int, AfterValidator(_port_range)]


def _dns_label_port_name(v: str) -> str:
    """Service port names are DNS-1123 labels (validateServicePort), up to 63 characters."""
    if len(v) > 63 or not _RE_IANA.match(v):
        raise PydanticCustomError(
            "invalid_value", "Invalid value: \"{value}\": a lowercase RFC 1123 label must consist of lower "
            "case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            {"value": v})
    return v


def _int_or_string(v: Any) -> Any:
    """IntOrString: a port number (1-65535) or a port name (IANA service name)."""
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        kind = "boolean" if isinstance(v, bool) else "null" if v is None else type(v).__name__
        raise PydanticCustomError("int_or_string_type",
                                  "Invalid value: \"{kind}\": must be of type integer or string", {"kind": kind})
    return _port_range(v) if isinstance(v, int) else _iana_name(v)


IntOrString = Annotated[Union[int, str], PlainValidator(_int_or_string)]


def _iana_name(v: str) -> str:
    """IANA service name rules the API server applies to port names."""
    if len(v) > 15 or not _RE_IANA.match(v) or "--" in v or not re.search("[a-z]", v):
        raise PydanticCustomError(
            "invalid_value", "Invalid value: \"{value}\": must be no more than 15 characters, contain only "
            "lowercase alphanumerics and '-', contain at least one letter, not start or end with '-' and "
            "not contain '--'", {"value": v})
    return v


# =========================================================================== Namespace
class NamespaceSpec(GWModel):
    """Namespace spec."""

    finalizers: Optional[list[str]] = Field(None, description="Finalizers that must be removed before the "
                                                              "namespace is deleted.")


class Namespace(Resource):
    """A Kubernetes namespace. Cluster-scoped; the name is a DNS-1123 label.
    Its labels are what Gateway listeners with `allowedRoutes.namespaces.from:
    Selector` select on."""

    NAMESPACED: ClassVar[bool] = False
    NAME_RULE: ClassVar[str] = "label"
    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Namespace"

    spec: Optional[NamespaceSpec] = Field(None, description="Namespace spec (finalizers).")


# =========================================================================== Service
class ServicePort(GWModel):
    """One port of a Service."""

    name: Optional[Annotated[str, AfterValidator(_dns_label_port_name)]] = Field(
        None, description="Port name (a DNS-1123 label, <=63 characters); required when the Service has "
                          "more than one port. Gateway API parentRefs `sectionName` refer to it.")
    protocol: Optional[Literal["TCP", "UDP", "SCTP"]] = Field("TCP", description="Protocol. Default TCP.")
    app_protocol: Optional[str] = Field(
        None, description="Application protocol (e.g. `kubernetes.io/h2c`, `http`); Gateway "
                          "implementations should honour it for backends.")
    port: Port = Field(description="Port the Service exposes (the port backendRefs name). Required.")
    target_port: Optional[IntOrString] = Field(
        None, description="Port number or name on the pods; defaults to `port`.")
    node_port: Optional[Port] = Field(None, description="Node port for NodePort/LoadBalancer Services.")


class ServiceSpec(GWModel):
    """Service spec (the fields commonly used)."""

    type: Optional[Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]] = Field(
        "ClusterIP", description="How the Service is exposed. Default ClusterIP. Gateway API backends "
                                 "should not be ExternalName Services.")
    selector: Optional[dict[str, str]] = Field(None, description="Labels of the pods behind the Service.")
    LIST_KEYS: ClassVar[dict] = {"ports": ("port", "protocol")}

    ports: Optional[Annotated[list[ServicePort], Field()]] = Field(
        None, description="Exposed ports (list-map keys `port` and `protocol`).")
    cluster_ip: Optional[str] = Field(None, alias="clusterIP", description="Virtual IP, or `None` for headless.")
    cluster_ips: Optional[list[str]] = Field(None, alias="clusterIPs", description="Virtual IPs (dual stack).")
    external_name: Optional[str] = Field(None, description="DNS name for type ExternalName.")
    external_ips: Optional[list[str]] = Field(None, alias="externalIPs", description="Extra external IPs.")
    external_traffic_policy: Optional[Literal["Cluster", "Local"]] = Field(None, description="External traffic policy.")
    internal_traffic_policy: Optional[Literal["Cluster", "Local"]] = Field(None, description="Internal traffic policy.")
    session_affinity: Optional[Literal["None", "ClientIP"]] = Field(None, description="Session affinity.")
    session_affinity_config: Optional[dict[str, Any]] = Field(None, description="Session affinity settings.")
    ip_families: Optional[list[Literal["IPv4", "IPv6"]]] = Field(None, alias="ipFamilies", description="IP families.")
    ip_family_policy: Optional[Literal["SingleStack", "PreferDualStack", "RequireDualStack"]] = Field(
        None, alias="ipFamilyPolicy", description="IP family policy.")
    load_balancer_ip: Optional[str] = Field(None, alias="loadBalancerIP", description="Requested LB IP (deprecated).")
    load_balancer_class: Optional[str] = Field(None, description="Load balancer implementation class.")
    load_balancer_source_ranges: Optional[list[str]] = Field(None, description="Allowed client CIDRs.")
    allocate_load_balancer_node_ports: Optional[bool] = Field(None, description="Allocate node ports for LBs.")
    health_check_node_port: Optional[Port] = Field(None, description="Health check node port.")
    publish_not_ready_addresses: Optional[bool] = Field(None, description="Publish not-ready endpoints.")
    traffic_distribution: Optional[str] = Field(None, description="Traffic distribution preference.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        errors = []
        ports = self.ports or []
        if len(ports) > 1:
            for i, p in enumerate(ports):
                if not p.name:
                    errors.append(InitErrorDetails(
                        type=PydanticCustomError("missing", "Required value"), loc=("ports", i, "name"), input=None))
        names = [p.name for p in ports if p.name]
        seen = set()
        for i, p in enumerate(ports):
            if p.name and p.name in seen:
                errors.append(InitErrorDetails(
                    type=PydanticCustomError("duplicate", "Duplicate value: {value}", {"value": f'"{p.name}"'}),
                    loc=("ports", i, "name"), input=None))
            seen.add(p.name)
        if (self.type or "ClusterIP") != "ExternalName" and not ports:
            errors.append(InitErrorDetails(type=PydanticCustomError("missing", "Required value"),
                                           loc=("ports",), input=None))
        _ = names
        return errors


class Service(Resource):
    """A Kubernetes Service: a stable name and virtual IP for a set of pods.
    The usual Gateway API backend (`backendRefs`), and a parent for mesh
    (GAMMA) routes. The name is a DNS-1035 label."""

    NAME_RULE: ClassVar[str] = "label1035"
    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Service"

    spec: ServiceSpec = Field(description="Service spec. Required.")


# =========================================================================== Secret
def _check_secret_keys(v: Optional[dict[str, str]]) -> Optional[dict[str, str]]:
    for k in v or {}:
        if len(k) > 253 or not _RE_SECRET_KEY.match(k):
            raise PydanticCustomError(
                "invalid_value", "Invalid value: \"{key}\": a valid config key must consist of alphanumeric "
                "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                "for validation is '[-._a-zA-Z0-9]+')", {"key": k})
    return v


def _check_base64(v: Optional[dict[str, str]]) -> Optional[dict[str, str]]:
    for k, val in (v or {}).items():
        try:
            base64.b64decode(val, validate=True)
        except Exception:
            raise PydanticCustomError("invalid_value", "illegal base64 data in value of \"{key}\"", {"key": k})
    return v


class Secret(Resource):
    """A Kubernetes Secret; for Gateway TLS, type `kubernetes.io/tls` with keys
    `tls.crt` and `tls.key`."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Secret"

    type: Optional[str] = Field("Opaque", description="Secret type, e.g. `kubernetes.io/tls`. Default Opaque.")
    data: Optional[Annotated[dict[str, str], AfterValidator(_check_secret_keys), AfterValidator(_check_base64)]] = Field(
        None, description="Values, base64-encoded.")
    string_data: Optional[Annotated[dict[str, str], AfterValidator(_check_secret_keys)]] = Field(
        None, description="Values as plain text (merged into `data` on write).")
    immutable: Optional[bool] = Field(None, description="When true, the data cannot be changed.")

    @model_validator(mode="after")
    def _tls_keys(self) -> "Secret":
        """ValidateSecret: a ``kubernetes.io/tls`` Secret must carry ``tls.crt`` and ``tls.key``."""
        if self.type == "kubernetes.io/tls":
            have = set(self.data or {}) | set(self.string_data or {})
            raise_errors("Secret", [
                InitErrorDetails(type=PydanticCustomError(
                    "required_key", "Required value", {"field_path": f"data[{key}]"}), loc=(), input=None)
                for key in ("tls.crt", "tls.key") if key not in have])
        return self

    @property
    def spec(self) -> None:  # Secrets have no spec
        return None

    def decoded(self) -> dict[str, bytes]:
        """All values as bytes (`data` decoded, `stringData` encoded)."""
        out = {k: base64.b64decode(v) for k, v in (self.data or {}).items()}
        out.update({k: v.encode() for k, v in (self.string_data or {}).items()})
        return out


# =========================================================================== Deployment
class _Permissive(GWModel):
    model_config = ConfigDict(extra="allow")


class Container(_Permissive):
    """A container of the pod template (other fields allowed)."""

    name: Annotated[str, StringConstraints(max_length=63, pattern=DNS1123_LABEL)] = Field(
        description="Container name (DNS-1123 label). Required.")
    image: Optional[str] = Field(None, description="Container image.")


class PodSpec(_Permissive):
    """Pod spec of the template (other fields allowed)."""

    containers: Annotated[list[Container], Field(min_length=1)] = Field(description="Containers. Required.")


class PodTemplateMeta(_Permissive):
    """Metadata of the pod template."""

    name: Optional[str] = Field(None, description="Name (usually empty).")
    labels: Optional[dict[str, str]] = Field(None, description="Pod labels; must match the selector.")
    annotations: Optional[dict[str, str]] = Field(None, description="Pod annotations (e.g. "
                                                                    "`linkerd.io/inject: enabled`).")


class PodTemplateSpec(GWModel):
    """Template of the pods a Deployment creates."""

    metadata: Optional[PodTemplateMeta] = Field(None, description="Pod metadata.")
    spec: PodSpec = Field(description="Pod spec. Required.")


class DeploymentStrategy(GWModel):
    """How pods are replaced."""

    type: Optional[Literal["RollingUpdate", "Recreate"]] = Field("RollingUpdate", description="Strategy type.")
    rolling_update: Optional[dict[str, Any]] = Field(None, description="maxSurge / maxUnavailable.")


class DeploymentSpec(GWModel):
    """Deployment spec."""

    replicas: Optional[Annotated[int, Field(ge=0)]] = Field(1, description="Desired pods. Default 1.")
    selector: LabelSelector = Field(description="Selects the pods; must match the template labels. Required.")
    template: PodTemplateSpec = Field(description="Pod template. Required.")
    strategy: Optional[DeploymentStrategy] = Field(None, description="Replacement strategy.")
    min_ready_seconds: Optional[Annotated[int, Field(ge=0)]] = Field(None, description="Seconds before ready counts.")
    revision_history_limit: Optional[Annotated[int, Field(ge=0)]] = Field(None, description="Old ReplicaSets kept.")
    progress_deadline_seconds: Optional[Annotated[int, Field(ge=1)]] = Field(None, description="Progress deadline.")
    paused: Optional[bool] = Field(None, description="Pause rollouts.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        wanted = (self.selector.match_labels or {})
        labels = (self.template.metadata.labels if self.template.metadata else None) or {}
        if wanted and any(labels.get(k) != v for k, v in wanted.items()):
            return [InitErrorDetails(type=PydanticCustomError(
                "invalid_value", "Invalid value: {labels}: `selector` does not match template `labels`",
                {"labels": repr(labels)}), loc=("template", "metadata", "labels"), input=None)]
        return []


class Deployment(Resource):
    """An apps/v1 Deployment: runs replicas of a pod template (the echo
    backends, canary versions)."""

    API_VERSION: ClassVar[str] = "apps/v1"
    KIND: ClassVar[str] = "Deployment"

    spec: DeploymentSpec = Field(description="Deployment spec. Required.")


# =========================================================================== Ingress
class ServiceBackendPort(GWModel):
    """A Service port by number or by name (exactly one)."""

    name: Optional[str] = Field(None, description="Port name.")
    number: Optional[Port] = Field(None, description="Port number.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if (self.name is None) == (self.number is None):
            return [InitErrorDetails(type=PydanticCustomError(
                "invalid_value", "{message}", {"message": "must specify either a port name or a port number"
                                               if self.name is None else "may not specify more than 1 port"}),
                loc=(), input=None)]
        return []


class IngressServiceBackend(GWModel):
    """A Service backend of an Ingress."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=63)] = Field(description="Service name. Required.")
    port: ServiceBackendPort = Field(description="Service port. Required.")


class TypedLocalObjectReference(GWModel):
    """A reference to an object of any kind in the same namespace."""

    api_group: Optional[str] = Field(None, description="API group.")
    kind: str = Field(description="Kind. Required.")
    name: str = Field(description="Name. Required.")


class IngressBackend(GWModel):
    """Where an Ingress sends traffic: a Service or a resource (exactly one)."""

    service: Optional[IngressServiceBackend] = Field(None, description="A Service backend.")
    resource: Optional[TypedLocalObjectReference] = Field(None, description="A resource backend.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if (self.service is None) == (self.resource is None):
            return [InitErrorDetails(type=PydanticCustomError(
                "invalid_value", "{message}", {"message": "one backend (`service` or `resource`) must be specified"
                                               if self.service is None else "cannot set both `service` and `resource` backends"}),
                loc=(), input=None)]
        return []


class HTTPIngressPath(GWModel):
    """A path of an Ingress rule."""

    path: Optional[str] = Field(None, description="Path to match; must start with `/` for Exact and Prefix.")
    path_type: Literal["Exact", "Prefix", "ImplementationSpecific"] = Field(
        description="`Exact`, `Prefix` (element-wise, like Gateway API PathPrefix) or "
                    "`ImplementationSpecific`. Required.")
    backend: IngressBackend = Field(description="Backend for matching requests. Required.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if self.path_type in ("Exact", "Prefix") and not (self.path or "").startswith("/"):
            return [InitErrorDetails(type=PydanticCustomError(
                "invalid_value", "Invalid value: \"{path}\": must be an absolute path", {"path": self.path or ""}),
                loc=("path",), input=None)]
        return []


class HTTPIngressRuleValue(GWModel):
    """HTTP paths of an Ingress rule."""

    paths: Annotated[list[HTTPIngressPath], Field(min_length=1)] = Field(description="Paths. Required.")


IngressHost = Annotated[str, StringConstraints(max_length=253, pattern=r"^(\*\.)?" + DNS1123_SUBDOMAIN[1:])]


class IngressRule(GWModel):
    """A host and its paths."""

    host: Optional[IngressHost] = Field(None, description="Host (optionally `*.` wildcard); no IPs. "
                                                          "Empty matches all hosts.")
    http: Optional[HTTPIngressRuleValue] = Field(None, description="HTTP paths.")


class IngressTLS(GWModel):
    """TLS for some hosts of an Ingress."""

    hosts: Optional[list[str]] = Field(None, description="Hosts covered by the certificate.")
    secret_name: Optional[str] = Field(None, description="Secret with the certificate and key.")


class IngressSpec(GWModel):
    """Ingress spec."""

    ingress_class_name: Optional[Annotated[str, StringConstraints(pattern=DNS1123_SUBDOMAIN)]] = Field(
        None, description="IngressClass handling this Ingress.")
    default_backend: Optional[IngressBackend] = Field(None, description="Backend for requests no rule matches.")
    rules: Optional[list[IngressRule]] = Field(None, description="Host rules.")
    tls: Optional[list[IngressTLS]] = Field(None, description="TLS configuration.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if not self.rules and self.default_backend is None:
            return [InitErrorDetails(type=PydanticCustomError(
                "invalid_value", "{message}", {"message": "either `defaultBackend` or `rules` must be specified"}),
                loc=(), input=None)]
        return []


class Ingress(Resource):
    """A networking.k8s.io/v1 Ingress, the API Gateway API replaces; gwlib
    converts it (`gwlib convert`)."""

    API_VERSION: ClassVar[str] = "networking.k8s.io/v1"
    KIND: ClassVar[str] = "Ingress"

    spec: IngressSpec = Field(description="Ingress spec. Required.")

