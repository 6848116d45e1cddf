"""What a Gateway API controller computes, as pure functions of the resources.

CONTRACT between the controller and the IR (the dataclass names and fields below are fixed;
fields may be added, not renamed or removed).

    result = reconcile(objects)          # objects: list of gwlib resources (gwlib.load)
    result.classes      dict name -> ClassState
    result.gateways     list[GatewayState] (only Gateways of a class gwlib accepts)
    result.routes       list[RouteState]   (every route kind, incl. not accepted ones)
    result.statuses()   list[dict]: every GatewayClass, Gateway and Route as a whole object
                        (apiVersion, kind, metadata, spec) with the computed "status",
                        in the shape `kubectl get -o json` prints items.

An object's key is "namespace/name" (cluster-scoped: "name"). Objects without a namespace
are in "default".

How the controller decides (Gateway API v1.6.1; see ``shared/reference/gateway-api.md``
§3-4 and the upstream doc comments):

* GatewayClass: accepted when its ``controllerName`` is one gwlib implements
  (:data:`CONTROLLER_NAMES`). Other classes, and Gateways/route parents of them, are left
  alone: their status is what the API server defaults it to ("Waiting for controller").
  ``parametersRef`` is not used by gwlib and does not affect acceptance.
* Listeners: protocol (HTTP, HTTPS, TLS, TCP, UDP, else ``UnsupportedProtocol``);
  distinctness per port (HTTP, HTTPS/TLS, TCP on one port are ``ProtocolConflict``; the same
  hostname twice in one protocol family is ``HostnameConflict``; conflicted listeners are
  not accepted, all of them, never a winner); ``allowedRoutes.kinds`` against the kinds the
  protocol carries (``InvalidRouteKinds``, ``supportedKinds`` keeps only the valid ones);
  HTTPS and TLS-Terminate ``certificateRefs`` (core Secret only, cross-namespace needs a
  ReferenceGrant: ``RefNotPermitted`` is decided before existence, as the conformance
  tests expect; missing, wrong kind/group or malformed: ``InvalidCertificateRef``).
* Routes: each parentRef to a Gateway gwlib owns gets a ``status.parents`` entry with
  ``Accepted`` (``NoMatchingParent`` when sectionName/port select no listener,
  ``NotAllowedByListeners`` when no selected listener allows the route's kind and
  namespace, ``NoMatchingListenerHostname`` when no hostname intersects) and
  ``ResolvedRefs`` (``InvalidKind``, ``RefNotPermitted``, ``BackendNotFound``, first
  failing reference wins, every failing reference is named in the message).
  parentRefs of kind Service (GAMMA, mesh; group ``""``, or ``core`` as Linkerd writes it)
  are recorded in ``RouteState.mesh_parents`` and reconciled as a mesh controller does
  (:func:`_reconcile_mesh`, below).
* Rules with values gwlib cannot implement (unknown enum values, invalid regular
  expressions: ``UnsupportedValue``; RequestRedirect with URLRewrite:
  ``IncompatibleFilters``) are dropped: ``PartiallyInvalid`` True ("Dropped Rule ...") when
  other rules remain, ``Accepted`` False when none does. The API server rejects most of
  these already; they reach the controller from plain dicts.
* Gateways: ``addresses`` of a type other than IPAddress/Hostname are ``UnsupportedAddress``;
  every accepted Gateway is given the address ``127.0.0.1`` (the lab binds only loopback).
  ``Accepted`` is ``ListenersNotValid`` (True when some listeners are valid, False when
  none is). The experimental Gateway-level ``ResolvedRefs`` condition is not written.

GAMMA (Service parents), as Gateway API v1.6.1 (shared_types.go ParentReference) and
GEP-1294 "xRoutes Mesh Binding" (formerly GEP-1426) say, and as Linkerd's policy controller
writes status (``controllerName: linkerd.io/policy-controller``, :data:`MESH_CONTROLLER_NAME`):

* Only HTTPRoute and GRPCRoute are reconciled as mesh routes (gwlib's mesh is L7); a
  TCP/TLS/UDP route with a Service parent gets no status entry (no gwlib controller owns it).
* The parent Service must exist and have a cluster IP: missing, headless (``clusterIP:
  None``) and ``ExternalName`` Services are ``Accepted=False/NoMatchingParent`` (GEP-1294
  "Allowed service types"; Linkerd's message "parent service must have a ClusterIP").
* ``port`` selects that Service port, ``sectionName`` the port of that name; both set, both
  must match one port; neither, every port of the Service (GEP-1294 "Ports"). No port
  selected: ``NoMatchingParent``. One :class:`Attachment` per accepted Service port, with
  ``gateway_key`` = the Service, ``listener`` None and ``hostnames`` ``["*"]`` (mesh routes
  infer nothing from ``hostnames``, GEP-1294 "hostnames field").
* A route in the Service's namespace is a *producer* route (for every meshed client); in
  another namespace a *consumer* route (only for clients in the route's namespace).
* Route types on one Service port: GRPCRoute wins over HTTPRoute (GEP-1294 "Route types");
  the HTTPRoute loses that port, and is ``Accepted=False/RouteReasonConflicted`` (Linkerd's
  reason) when it loses every port. Choice: types conflict only within one group of routes
  (the producer routes, or one namespace's consumer routes), since GEP-1294 never merges
  routes across groups; a consumer route in one namespace cannot reject a producer route.
* backendRefs of mesh routes need no ReferenceGrant (GEP-1294 "Namespace boundaries":
  "Routes of either type can send traffic to backendRefs in any namespace ... without a
  ReferenceGrant"): ``ResolvedRefs`` of a mesh parent is computed without grants
  (:attr:`RouteState.mesh_backends`); a route that also has Gateway parents keeps the
  grant rules for those.

Choices where the spec is silent: a Secret is a valid certificate when it is of type
``kubernetes.io/tls`` (or has no type) and ``tls.crt``/``tls.key`` hold PEM armour (the
key pair itself is not checked); a listener whose certificateRefs fail, whose kinds are
all invalid, or that is conflicted is not programmed and serves no traffic, but routes
still attach to it and count in ``attachedRoutes`` (as the spec requires). A backendRef of
weight 0 is still resolved and reported in ``ResolvedRefs`` (it never gets traffic).
"""
from __future__ import annotations

import base64
import binascii
import copy
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from . import matching

GATEWAY_GROUP = "gateway.networking.k8s.io"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute")
#: Route kinds that have ``spec.hostnames``.
HOSTNAME_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute")
#: Route kinds each listener protocol carries (the supportedKinds when kinds is unset).
PROTOCOL_KINDS = {
    "HTTP": ("HTTPRoute", "GRPCRoute"),
    "HTTPS": ("HTTPRoute", "GRPCRoute"),
    "TLS": ("TLSRoute",),
    "TCP": ("TCPRoute",),
    "UDP": ("UDPRoute",),
}
#: Listeners on one port must all be of one family (TCP transport); UDP is its own.
_FAMILY = {"HTTP": "http", "HTTPS": "tls", "TLS": "tls", "TCP": "tcp", "UDP": "udp"}
#: The address every Gateway gets (the lab binds only loopback).
GATEWAY_ADDRESS = "127.0.0.1"


@dataclass
class Condition:
    type: str
    status: str                 # "True" | "False" | "Unknown"
    reason: str
    message: str
    observed_generation: int = 1

    def to_dict(self) -> dict:
        return {"type": self.type, "status": self.status, "reason": self.reason,
                "message": self.message, "observedGeneration": self.observed_generation}


@dataclass
class ClassState:
    name: str
    controller_name: str
    ours: bool                  # controllerName is one gwlib implements
    accepted: bool
    conditions: list[Condition] = field(default_factory=list)


@dataclass
class ListenerState:
    name: str
    port: int
    protocol: str               # HTTP | HTTPS | TLS | TCP | UDP
    hostname: str | None
    tls_mode: str | None        # Terminate | Passthrough | None
    certificate_refs: list[dict] = field(default_factory=list)   # resolved Secrets {namespace,name}
    supported_kinds: list[dict] = field(default_factory=list)    # [{"group":..., "kind":...}]
    ready: bool = True          # Accepted and Programmed and not Conflicted
    attached_routes: int = 0
    conditions: list[Condition] = field(default_factory=list)
    # added fields
    index: int = 0                                  # position in spec.listeners
    allowed_routes: dict = field(default_factory=dict)   # spec allowedRoutes (defaults applied)


@dataclass
class GatewayState:
    obj: Any                    # the Gateway resource
    key: str                    # "ns/name"
    class_name: str
    controller_name: str
    accepted: bool
    programmed: bool
    addresses: list[dict] = field(default_factory=list)   # [{"type": "IPAddress", "value": "127.0.0.1"}]
    listeners: list[ListenerState] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]

    def listener(self, name: str) -> ListenerState | None:
        return next((l for l in self.listeners if l.name == name), None)


@dataclass
class BackendCheck:
    """Resolution of one backendRef (rule backendRefs, backendRef filters' or mirror's)."""
    namespace: str
    name: str
    port: int | None
    kind: str = "Service"
    group: str = ""
    weight: int = 1
    valid: bool = True
    reason: str = "ResolvedRefs"   # BackendNotFound | InvalidKind | RefNotPermitted | UnsupportedProtocol
    message: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Attachment:
    """One accepted (route, parentRef, listener) binding."""
    parent_index: int           # index into route.spec.parentRefs
    gateway_key: str            # "ns/name" of the Gateway (or Service for mesh parents)
    listener: str | None        # listener name; None for Service (mesh) parents
    port: int | None
    hostnames: list[str]        # effective hostnames on that listener; ["*"] = any


@dataclass
class RouteState:
    obj: Any                    # the route resource
    kind: str                   # HTTPRoute | GRPCRoute | TCPRoute | UDPRoute | TLSRoute
    key: str                    # "ns/name"
    attachments: list[Attachment] = field(default_factory=list)
    # backends[rule_index][backend_index] for spec.rules[i].backendRefs[j]
    backends: list[list[BackendCheck]] = field(default_factory=list)
    # mirrors[(rule_index, filter_index)] -> BackendCheck for RequestMirror filters
    mirrors: dict[tuple[int, int], BackendCheck] = field(default_factory=dict)
    # parents[parent_index] -> conditions written into status.parents[]
    parents: dict[int, list[Condition]] = field(default_factory=dict)
    # added fields
    spec: dict = field(default_factory=dict)            # spec as CRD JSON, defaults applied
    generation: int = 1
    created: datetime | None = None                     # metadata.creationTimestamp
    # parent_index -> controllerName of the Gateway's class (status.parents[].controllerName)
    parent_controllers: dict[int, str] = field(default_factory=dict)
    # backend_filters[(rule, backend, filter)] -> BackendCheck of a mirror inside a backendRef filter
    backend_mirrors: dict[tuple[int, int, int], BackendCheck] = field(default_factory=dict)
    # rules dropped as invalid (rule_index -> message, rule_index -> reason); no route entries
    dropped_rules: dict[int, str] = field(default_factory=dict)
    dropped_reasons: dict[int, str] = field(default_factory=dict)
    # GAMMA hook: [(parent_index, "ns/service", port or None)] — parentRefs of kind Service
    mesh_parents: list[tuple[int, str, int | None]] = field(default_factory=list)
    # GAMMA: backend checks for the mesh (no ReferenceGrant needed), shaped like backends,
    # mirrors and backend_mirrors; filled for routes with mesh parents
    mesh_backends: list[list[BackendCheck]] = field(default_factory=list)
    mesh_mirrors: dict[tuple[int, int], BackendCheck] = field(default_factory=dict)
    mesh_backend_mirrors: dict[tuple[int, int, int], BackendCheck] = field(default_factory=dict)
    # GAMMA: parent_index -> Service ports the route is attached to (accepted ones only)
    mesh_ports: dict[int, list[int]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]

    @property
    def accepted(self) -> bool:
        return bool(self.attachments)


@dataclass
class ControllerResult:
    classes: dict[str, ClassState] = field(default_factory=dict)
    gateways: list[GatewayState] = field(default_factory=list)
    routes: list[RouteState] = field(default_factory=list)
    # added: every input object as CRD JSON (defaults applied), in input order
    documents: list[dict] = field(default_factory=list)
    services: dict[str, dict] = field(default_factory=dict)      # "ns/name" -> Service JSON

    def gateway(self, key: str) -> GatewayState | None:
        return next((g for g in self.gateways if g.key == key), None)

    def route(self, key: str, kind: str | None = None) -> RouteState | None:
        return next((r for r in self.routes if r.key == key and (kind is None or r.kind == kind)), None)

    def statuses(self) -> list[dict]:
        """Every GatewayClass, Gateway and Route with its computed ``status``.

        Ordered like ``kubectl get gatewayclasses,gateways,httproutes,... -A``: by kind, then
        namespace/name. Objects of classes gwlib does not implement keep the status the API
        server defaults them to (``Accepted``/``Programmed`` Unknown, ``Pending``).
        """
        gateways = {g.key: g for g in self.gateways}
        routes = {(r.kind, r.key): r for r in self.routes}
        order = {"GatewayClass": 0, "Gateway": 1, **{k: 2 + i for i, k in enumerate(ROUTE_KINDS)}}
        items = []
        for doc in self.documents:
            kind = doc.get("kind")
            if kind not in order:
                continue
            meta = doc.get("metadata") or {}
            gen = _generation(doc)
            item = {k: copy.deepcopy(v) for k, v in doc.items() if k != "status"}
            if kind != "GatewayClass":  # as the API server stores it: always a namespace
                m = dict(item.get("metadata") or {})
                m.pop("namespace", None)
                item["metadata"] = {"name": m.pop("name", ""), "namespace": _namespace(doc), **m}
            if kind == "GatewayClass":
                cls = self.classes.get(meta.get("name", ""))
                if cls is not None and cls.ours:
                    item["status"] = {"conditions": [c.to_dict() for c in cls.conditions]}
                else:
                    item["status"] = _pending_status(("Accepted",), gen)
            elif kind == "Gateway":
                gw = gateways.get(_key(doc))
                item["status"] = _gateway_status(gw) if gw is not None else \
                    _pending_status(("Accepted", "Programmed"), gen)
            else:
                rs = routes.get((kind, _key(doc)))
                parents = []
                if rs is not None:
                    refs = rs.spec.get("parentRefs") or []
                    for i in sorted(rs.parents):
                        parents.append({
                            "parentRef": _status_parent_ref(refs[i]),
                            "controllerName": rs.parent_controllers.get(i, CONTROLLER_NAMES[0]),
                            "conditions": [c.to_dict() for c in rs.parents[i]],
                        })
                item["status"] = {"parents": parents}
            items.append(((order[kind], meta.get("namespace") or "", meta.get("name") or ""), item))
        items.sort(key=lambda t: t[0])
        return [item for _, item in items]


#: controllerName values gwlib implements (design §4.1).
CONTROLLER_NAMES = ("gwlib.dev/gateway-controller", "traefik.io/gateway-controller")
#: controllerName written into status.parents of mesh (Service) parents: gwlib's mesh stands
#: in for Linkerd, and this is what Linkerd's policy controller writes.
MESH_CONTROLLER_NAME = "linkerd.io/policy-controller"
#: Parent groups that name a core Service: "" (Gateway API) and "core" (Linkerd's docs).
SERVICE_GROUPS = ("", "core")
#: Route kinds gwlib reconciles as mesh routes.
MESH_KINDS = ("HTTPRoute", "GRPCRoute")


# --------------------------------------------------------------------------- helpers

_CLUSTER_SCOPED = {"GatewayClass", "Namespace", "ClusterRole", "ClusterRoleBinding",
                   "CustomResourceDefinition"}


def _as_dict(obj: Any) -> dict:
    """A resource (or a plain manifest dict) as CRD JSON with defaults applied."""
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        try:
            return to_dict(defaults=True)
        except TypeError:
            return to_dict()
    raise TypeError(f"cannot read {type(obj).__name__} as a Kubernetes object")


def _namespace(doc: dict) -> str | None:
    if doc.get("kind") in _CLUSTER_SCOPED:
        return None
    return (doc.get("metadata") or {}).get("namespace") or "default"


def _key(doc: dict) -> str:
    name = (doc.get("metadata") or {}).get("name") or ""
    ns = _namespace(doc)
    return name if ns is None else f"{ns}/{name}"


def _generation(doc: dict) -> int:
    gen = (doc.get("metadata") or {}).get("generation")
    try:
        return int(gen) if gen else 1
    except (TypeError, ValueError):
        return 1


def parse_timestamp(value: Any) -> datetime | None:
    """metadata.creationTimestamp (RFC 3339 string or datetime) → aware datetime or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        # Python 3.10 takes only 0, 3 or 6 fractional digits: normalise them to 6
        m = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$", text)
        if not m:
            return None
        try:
            dt = datetime.fromisoformat(m.group(1) + (f".{(m.group(2) + '000000')[:6]}" if m.group(2) else "")
                                        + m.group(3))
        except ValueError:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _pending_status(types: tuple[str, ...], generation: int) -> dict:
    """The status the CRDs default an object to before any controller writes it."""
    return {"conditions": [
        {"type": t, "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
         "observedGeneration": generation} for t in types]}


def _status_parent_ref(ref: dict) -> dict:
    """spec.parentRefs[i] as the API server stores it (group and kind defaulted)."""
    out = {"group": ref.get("group", GATEWAY_GROUP) if ref.get("group") is not None else GATEWAY_GROUP,
           "kind": ref.get("kind") or "Gateway"}
    for k in ("namespace", "name", "sectionName", "port"):
        if ref.get(k) is not None:
            out[k] = ref[k]
    return out


def _gateway_status(gw: GatewayState) -> dict:
    return {
        "addresses": copy.deepcopy(gw.addresses),
        "conditions": [c.to_dict() for c in gw.conditions],
        "listeners": [{
            "name": l.name,
            "supportedKinds": copy.deepcopy(l.supported_kinds),
            "attachedRoutes": l.attached_routes,
            "conditions": [c.to_dict() for c in l.conditions],
        } for l in gw.listeners],
    }


def _label_selector_matches(selector: dict | None, labels: dict) -> bool:
    """metav1.LabelSelector semantics; a missing selector selects nothing, {} everything."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            if key not in labels or labels[key] not in values:
                return False
        elif op == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif op == "Exists":
            if key not in labels:
                return False
        elif op == "DoesNotExist":
            if key in labels:
                return False
        else:
            return False
    return True


def _secret_problem(secret: dict) -> str | None:
    """Why a Secret cannot serve as a TLS certificate, or None if it can."""
    stype = secret.get("type")
    if stype not in (None, "kubernetes.io/tls"):
        return f'type is "{stype}", not "kubernetes.io/tls"'
    data = dict(secret.get("data") or {})
    string_data = secret.get("stringData") or {}
    values: dict[str, str] = {}
    for k in ("tls.crt", "tls.key"):
        if k in string_data:
            values[k] = str(string_data[k])
        elif k in data:
            try:
                values[k] = base64.b64decode(str(data[k]), validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return f"{k} is not valid base64"
        else:
            return f"has no {k}"
    crt, key = values["tls.crt"], values["tls.key"]
    if "-----BEGIN CERTIFICATE-----" not in crt:
        return "tls.crt is not a PEM certificate"
    if "-----BEGIN" not in key or "PRIVATE KEY-----" not in key:
        return "tls.key is not a PEM private key"
    return None


class _World:
    """Indexes of the input objects."""

    def __init__(self, docs: list[dict]):
        self.docs = docs
        self.by_kind: dict[str, list[dict]] = defaultdict(list)
        for d in docs:
            self.by_kind[d.get("kind") or ""].append(d)
        self.services = {_key(d): d for d in self.by_kind["Service"]}
        self.secrets = {_key(d): d for d in self.by_kind["Secret"]}
        self.namespaces = {(d.get("metadata") or {}).get("name"): d for d in self.by_kind["Namespace"]}
        self.grants_by_ns: dict[str, list[dict]] = defaultdict(list)
        for g in self.by_kind["ReferenceGrant"]:
            self.grants_by_ns[_namespace(g) or "default"].append(g)

    def find(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """The input object of ``kind`` named ``name`` (in ``namespace``; None = cluster-scoped)."""
        for d in self.by_kind.get(kind, ()):
            if (d.get("metadata") or {}).get("name") == name and (namespace is None or _namespace(d) == namespace):
                return d
        return None

    def namespace_labels(self, ns: str) -> dict:
        doc = self.namespaces.get(ns)
        labels = dict(((doc or {}).get("metadata") or {}).get("labels") or {})
        labels["kubernetes.io/metadata.name"] = ns  # every namespace has it
        return labels

    def granted(self, from_group: str, from_kind: str, from_ns: str,
                to_group: str, to_kind: str, to_ns: str, to_name: str) -> bool:
        """Does a ReferenceGrant in ``to_ns`` allow this reference?"""
        for grant in self.grants_by_ns.get(to_ns, ()):
            spec = grant.get("spec") or {}
            if not any((f.get("group") or "") == from_group and f.get("kind") == from_kind
                       and f.get("namespace") == from_ns for f in spec.get("from") or []):
                continue
            if any((t.get("group") or "") == to_group and t.get("kind") == to_kind
                   and (not t.get("name") or t.get("name") == to_name) for t in spec.get("to") or []):
                return True
        return False


# --------------------------------------------------------------------------- classes

def _missing_parameters(ref: dict | None, default_ns: str | None, world: _World) -> str | None:
    """Why a ``parametersRef`` cannot be used (gwlib reads no parameters, but the object a
    class or Gateway names must exist), or None."""
    if not ref:
        return None
    ns = ref.get("namespace") or default_ns
    if world.find(ref.get("kind") or "", ns, ref.get("name") or "") is None:
        where = f"{ns}/{ref.get('name')}" if ns else ref.get("name")
        return f"parametersRef {ref.get('kind')} {where} does not exist"
    return None


def _reconcile_class(doc: dict, world: _World) -> ClassState:
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    name = meta.get("name") or ""
    cname = spec.get("controllerName") or ""
    ours = cname in CONTROLLER_NAMES
    gen = _generation(doc)
    conds = []
    missing = _missing_parameters(spec.get("parametersRef"), None, world) if ours else None
    if missing:
        conds = [Condition("Accepted", "False", "InvalidParameters", missing, gen),
                 Condition("SupportedVersion", "True", "SupportedVersion",
                           "Gateway API v1.6.1 is supported", gen)]
        return ClassState(name=name, controller_name=cname, ours=ours, accepted=False, conditions=conds)
    if ours:
        conds = [
            Condition("Accepted", "True", "Accepted",
                      f"GatewayClass is accepted by {cname}", gen),
            Condition("SupportedVersion", "True", "SupportedVersion",
                      "Gateway API v1.6.1 is supported", gen),
        ]
    return ClassState(name=name, controller_name=cname, ours=ours, accepted=ours, conditions=conds)


# --------------------------------------------------------------------------- gateways

def _tls_overlap(l: ListenerState, listeners: list[ListenerState]) -> list[str]:
    """Other TLS-terminating listeners on the same port whose hostnames overlap ``l``'s
    (one covers the other, e.g. ``*.example.com`` and ``a.example.com``)."""
    if l.protocol not in ("HTTPS", "TLS") or l.tls_mode != "Terminate":
        return []
    out = []
    for other in listeners:
        if other is l or other.port != l.port or other.protocol not in ("HTTPS", "TLS") \
                or other.tls_mode != "Terminate":
            continue
        a, b = l.hostname, other.hostname
        if a is None or b is None or a == b or matching.hostname_matches(a, b.replace("*.", "x.", 1)) \
                or matching.hostname_matches(b, a.replace("*.", "x.", 1)):
            out.append(other.name)
    return out


def _reconcile_gateway(doc: dict, cls: ClassState, world: _World) -> GatewayState:
    spec = doc.get("spec") or {}
    gen = _generation(doc)
    gw_ns = _namespace(doc) or "default"
    listeners: list[ListenerState] = []
    problems: dict[int, list[tuple[str, str, str, str]]] = defaultdict(list)  # idx -> [(type,status,reason,msg)]

    for i, spec_l in enumerate(spec.get("listeners") or []):
        proto = str(spec_l.get("protocol") or "")
        tls = spec_l.get("tls") or None
        mode = None
        if proto in ("HTTPS", "TLS"):
            mode = (tls or {}).get("mode") or "Terminate"
        l = ListenerState(name=spec_l.get("name") or f"listener-{i}", port=int(spec_l.get("port") or 0),
                          protocol=proto, hostname=spec_l.get("hostname") or None, tls_mode=mode, index=i)
        allowed = copy.deepcopy(spec_l.get("allowedRoutes") or {})
        allowed.setdefault("namespaces", {})
        allowed["namespaces"] = dict(allowed["namespaces"] or {})
        allowed["namespaces"].setdefault("from", "Same")
        l.allowed_routes = allowed
        listeners.append(l)

    # --- protocol support and supported kinds
    for l, spec_l in zip(listeners, spec.get("listeners") or []):
        if l.protocol not in PROTOCOL_KINDS:
            problems[l.index].append(("Accepted", "False", "UnsupportedProtocol",
                                      f'Protocol "{l.protocol}" is not supported; use HTTP, HTTPS, TLS, TCP or UDP'))
            l.supported_kinds = []
            continue
        valid = PROTOCOL_KINDS[l.protocol]
        kinds = l.allowed_routes.get("kinds") or []
        if not kinds:
            l.supported_kinds = [{"group": GATEWAY_GROUP, "kind": k} for k in valid]
        else:
            supported, invalid = [], []
            for rk in kinds:
                group = rk.get("group", GATEWAY_GROUP)
                group = GATEWAY_GROUP if group is None else group
                kind = rk.get("kind") or ""
                entry = {"group": group, "kind": kind}
                if group == GATEWAY_GROUP and kind in valid:
                    if entry not in supported:
                        supported.append(entry)
                else:
                    invalid.append(f"{group}/{kind}" if group else kind)
            l.supported_kinds = supported
            if invalid:
                problems[l.index].append((
                    "ResolvedRefs", "False", "InvalidRouteKinds",
                    f"Route kinds not supported on a {l.protocol} listener: {', '.join(invalid)}"
                    + (f"; supported: {', '.join(k['kind'] for k in supported)}" if supported else "")))

    # --- distinctness (per port)
    by_port: dict[int, list[ListenerState]] = defaultdict(list)
    for l in listeners:
        if l.protocol in PROTOCOL_KINDS:
            by_port[l.port].append(l)
    conflicted: dict[int, tuple[str, str]] = {}
    for port, ls in by_port.items():
        stream = [l for l in ls if l.protocol != "UDP"]
        families = {_FAMILY[l.protocol] for l in stream}
        if len(families) > 1:
            protos = sorted({l.protocol for l in stream})
            for l in stream:
                conflicted[l.index] = ("ProtocolConflict",
                                       f"Port {port} is used by listeners of incompatible protocols "
                                       f"({', '.join(protos)})")
        else:
            seen: dict[str | None, list[ListenerState]] = defaultdict(list)
            for l in stream:
                seen[l.hostname].append(l)
            for host, group in seen.items():
                if len(group) > 1:
                    for l in group:
                        conflicted[l.index] = ("HostnameConflict",
                                               f"Listeners {', '.join(g.name for g in group)} use port {port} "
                                               f"with the same hostname {host or '(none)'}")
        udp = [l for l in ls if l.protocol == "UDP"]
        if len(udp) > 1:
            for l in udp:
                conflicted[l.index] = ("ProtocolConflict", f"More than one UDP listener uses port {port}")

    # --- TLS certificates
    for l, spec_l in zip(listeners, spec.get("listeners") or []):
        if l.protocol not in ("HTTPS", "TLS") or l.tls_mode != "Terminate":
            continue
        refs = ((spec_l.get("tls") or {}).get("certificateRefs")) or []
        if not refs:
            problems[l.index].append(("ResolvedRefs", "False", "InvalidCertificateRef",
                                      f"A {l.protocol} listener with TLS mode Terminate needs tls.certificateRefs"))
            continue
        for j, ref in enumerate(refs):
            group = ref.get("group") or ""
            kind = ref.get("kind") or "Secret"
            name = ref.get("name") or ""
            ns = ref.get("namespace") or gw_ns
            where = f"tls.certificateRefs[{j}]"
            if group != "" or kind != "Secret":
                problems[l.index].append(("ResolvedRefs", "False", "InvalidCertificateRef",
                                          f'{where}: {group + "/" if group else ""}{kind} {ns}/{name} is not supported; '
                                          f"use a core Secret"))
                continue
            if ns != gw_ns and not world.granted(GATEWAY_GROUP, "Gateway", gw_ns, "", "Secret", ns, name):
                problems[l.index].append(("ResolvedRefs", "False", "RefNotPermitted",
                                          f"{where}: Secret {ns}/{name} is in another namespace and no "
                                          f"ReferenceGrant in {ns} allows Gateways from {gw_ns} to use it"))
                continue
            secret = world.secrets.get(f"{ns}/{name}")
            if secret is None:
                problems[l.index].append(("ResolvedRefs", "False", "InvalidCertificateRef",
                                          f"{where}: Secret {ns}/{name} does not exist"))
                continue
            why = _secret_problem(secret)
            if why:
                problems[l.index].append(("ResolvedRefs", "False", "InvalidCertificateRef",
                                          f"{where}: Secret {ns}/{name} is malformed: {why}"))
                continue
            l.certificate_refs.append({"namespace": ns, "name": name})

    # --- listener conditions
    for l in listeners:
        probs = problems.get(l.index, [])
        accepted_prob = next((p for p in probs if p[0] == "Accepted"), None)
        ref_probs = [p for p in probs if p[0] == "ResolvedRefs"]
        conflict = conflicted.get(l.index)
        cert_bad = any(p[2] != "InvalidRouteKinds" for p in ref_probs)
        conds: list[Condition] = []
        if accepted_prob:
            conds.append(Condition("Accepted", "False", accepted_prob[2], accepted_prob[3], gen))
        elif conflict:
            conds.append(Condition("Accepted", "False", conflict[0],
                                   "Listener is not accepted: " + conflict[1], gen))
        else:
            conds.append(Condition("Accepted", "True", "Accepted", "Listener is accepted", gen))
        ready = not accepted_prob and not conflict and not cert_bad and bool(l.supported_kinds)
        conds.append(Condition("Programmed", "True" if ready else "False",
                               "Programmed" if ready else "Invalid",
                               "Listener is programmed" if ready else
                               "Listener is invalid, see other conditions for details", gen))
        if ref_probs:
            reason = next((p[2] for p in ref_probs if p[2] != "InvalidRouteKinds"), ref_probs[0][2])
            conds.append(Condition("ResolvedRefs", "False", reason, "; ".join(p[3] for p in ref_probs), gen))
        else:
            conds.append(Condition("ResolvedRefs", "True", "ResolvedRefs", "All references are resolved", gen))
        if conflict:
            conds.append(Condition("Conflicted", "True", conflict[0], conflict[1], gen))
        else:
            conds.append(Condition("Conflicted", "False", "NoConflicts", "No conflicts", gen))
        overlap = _tls_overlap(l, listeners)
        if overlap:  # negative polarity: only ever set True (GEP-3567)
            conds.append(Condition("OverlappingTLSConfig", "True", "OverlappingHostnames",
                                   f"hostname overlaps with listener(s) {', '.join(overlap)} on port {l.port}: "
                                   "a connection reused for another name may reach the wrong listener", gen))
        l.conditions = conds
        l.ready = ready

    # --- gateway conditions
    bad = [l for l in listeners if not l.ready]
    key = _key(doc)
    odd = [a for a in spec.get("addresses") or []
           if (a.get("type") or "IPAddress") not in ("IPAddress", "Hostname")]
    missing = _missing_parameters((spec.get("infrastructure") or {}).get("parametersRef"), gw_ns, world)
    def not_accepted(reason: str, message: str) -> GatewayState:
        """The whole Gateway is refused: it and every listener are not Programmed."""
        def not_programmed() -> Condition:
            return Condition("Programmed", "False", "Invalid", "The Gateway is not accepted", gen)

        for l in listeners:
            l.ready = False
            l.conditions = [c if c.type != "Programmed" else not_programmed() for c in l.conditions]
        return GatewayState(obj=doc, key=key, class_name=cls.name, controller_name=cls.controller_name,
                            accepted=False, programmed=False, addresses=[], listeners=listeners,
                            conditions=[Condition("Accepted", "False", reason, message, gen), not_programmed()])

    if missing:
        return not_accepted("InvalidParameters", f"infrastructure.{missing}")
    if odd:
        types = ", ".join(sorted({str(a.get("type")) for a in odd}))
        return not_accepted("UnsupportedAddress",
                            f"Address type(s) {types} not supported; gwlib assigns IPAddress {GATEWAY_ADDRESS}")
    if not listeners or len(bad) == len(listeners):
        accepted, programmed = False, False
        acc = Condition("Accepted", "False", "ListenersNotValid",
                        "No listener is valid: " + ", ".join(l.name for l in bad) if bad
                        else "The Gateway has no listeners", gen)
        prog = Condition("Programmed", "False", "Invalid", "No listener could be programmed", gen)
    else:
        accepted, programmed = True, True
        if bad:
            ok = [l.name for l in listeners if l.ready]
            acc = Condition("Accepted", "True", "ListenersNotValid",
                            f"Listeners not valid: {', '.join(l.name for l in bad)}; "
                            f"accepted: {', '.join(ok)}", gen)
        else:
            acc = Condition("Accepted", "True", "Accepted", f"Gateway is accepted by {cls.controller_name}", gen)
        prog = Condition("Programmed", "True", "Programmed",
                         f"Gateway is programmed; address {GATEWAY_ADDRESS}", gen)
    return GatewayState(obj=doc, key=key, class_name=cls.name, controller_name=cls.controller_name,
                        accepted=accepted, programmed=programmed,
                        addresses=[{"type": "IPAddress", "value": GATEWAY_ADDRESS}],
                        listeners=listeners, conditions=[acc, prog])


# --------------------------------------------------------------------------- routes

def _check_backend(ref: dict, route_kind: str, route_ns: str, world: _World,
                   grants: bool = True) -> BackendCheck:
    group = ref.get("group") or ""
    kind = ref.get("kind") or "Service"
    name = ref.get("name") or ""
    ns = ref.get("namespace") or route_ns
    port = ref.get("port")
    weight = ref.get("weight")
    weight = 1 if weight is None else int(weight)
    bc = BackendCheck(namespace=ns, name=name, port=port, kind=kind, group=group, weight=weight)

    def fail(reason: str, message: str) -> BackendCheck:
        bc.valid, bc.reason, bc.message = False, reason, message
        return bc

    shown = f"{group + '/' if group else ''}{kind} {ns}/{name}"
    if group != "" or kind != "Service":
        return fail("InvalidKind", f"{shown}: only core Services are supported as backends")
    if grants and ns != route_ns and not world.granted(GATEWAY_GROUP, route_kind, route_ns, "", "Service", ns, name):
        return fail("RefNotPermitted", f"Service {ns}/{name} is in another namespace and no ReferenceGrant "
                                       f"in {ns} allows {route_kind}s from {route_ns} to use it")
    svc = world.services.get(f"{ns}/{name}")
    if svc is None:
        return fail("BackendNotFound", f"Service {ns}/{name} not found")
    sspec = svc.get("spec") or {}
    if sspec.get("type") == "ExternalName":
        return fail("UnsupportedProtocol", f"Service {ns}/{name} is of type ExternalName, which gwlib does not support")
    if port is None:
        return fail("BackendNotFound", f"Service {ns}/{name}: backendRef has no port")
    ports = [p.get("port") for p in sspec.get("ports") or []]
    if int(port) not in [int(p) for p in ports if p is not None]:
        return fail("BackendNotFound", f"Service {ns}/{name} has no port {port}"
                                       + (f" (ports: {', '.join(str(p) for p in ports)})" if ports else ""))
    bc.message = f"Service {ns}/{name}:{port}"
    return bc


_PATH_TYPES = ("Exact", "PathPrefix", "RegularExpression")
_VALUE_TYPES = ("Exact", "RegularExpression")
_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_FILTER_TYPES = {
    "HTTPRoute": ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect",
                  "URLRewrite", "ExtensionRef", "CORS"),
    "GRPCRoute": ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"),
}


def _rule_problem(kind: str, rule: dict) -> tuple[str, str] | None:
    """(reason, message) of a value in a rule that makes gwlib drop the rule, or None.

    The API server rejects most of these already (enums, CEL); they reach the controller
    only from plain dicts. Unknown enum values are ``UnsupportedValue`` (reference §3.2),
    RequestRedirect together with URLRewrite is ``IncompatibleFilters`` (§3.5); invalid
    regular expressions are ``UnsupportedValue``.
    """
    bad = _rule_value_problem(kind, rule)
    if bad:
        return "UnsupportedValue", bad
    types = [f.get("type") for f in rule.get("filters") or []]
    for t in types:
        if kind in _FILTER_TYPES and t not in _FILTER_TYPES[kind]:
            return "UnsupportedValue", f"filter type {t!r} is not supported on a {kind}"
    if "RequestRedirect" in types and "URLRewrite" in types:
        return "IncompatibleFilters", "RequestRedirect and URLRewrite cannot be used in one rule"
    return None


def _rule_value_problem(kind: str, rule: dict) -> str | None:
    for m in rule.get("matches") or []:
        if kind == "HTTPRoute":
            ptype = (m.get("path") or {}).get("type") or "PathPrefix"
            if ptype not in _PATH_TYPES:
                return f"path match type {ptype!r} is not supported"
            if m.get("method") and m["method"] not in _METHODS:
                return f"method {m['method']!r} is not supported"
        for h in (m.get("headers") or []) + (m.get("queryParams") or []):
            if (h.get("type") or "Exact") not in _VALUE_TYPES:
                return f"match type {h.get('type')!r} is not supported"
        path = m.get("path") or {}
        patterns = [("path regular expression", path)] if path.get("type") == "RegularExpression" else []
        patterns += [(f"{what} regular expression", h) for what, key in (("header", "headers"),
                                                                          ("query parameter", "queryParams"))
                     for h in m.get(key) or [] if h.get("type") == "RegularExpression"]
        for what, match in patterns:
            problem = _regex_problem(match.get("value"))
            if problem:
                return f'{what} "{match.get("value")}" is invalid: {problem}'
        method = m.get("method") if kind == "GRPCRoute" else None
        if isinstance(method, dict) and method.get("type") == "RegularExpression":
            for part in ("service", "method"):
                problem = _regex_problem(method.get(part))
                if problem:
                    return f"gRPC {part} regular expression is invalid: {problem}"
    return None


def _regex_problem(pattern: str | None) -> str | None:
    """Why a RegularExpression match value does not compile (gwlib uses Python's re)."""
    try:
        re.compile(pattern or "")
    except re.error as exc:
        return str(exc)
    return None


def _ns_allowed(l: ListenerState, gw_ns: str, route_ns: str, world: _World) -> bool:
    spec_ns = l.allowed_routes.get("namespaces") or {}
    frm = spec_ns.get("from") or "Same"
    if frm == "All":
        return True
    if frm == "Same":
        return route_ns == gw_ns
    if frm == "Selector":
        return _label_selector_matches(spec_ns.get("selector"), world.namespace_labels(route_ns))
    return False


def _kind_allowed(l: ListenerState, kind: str) -> bool:
    return any(k.get("kind") == kind and k.get("group") == GATEWAY_GROUP for k in l.supported_kinds)


def _references(spec: dict, kind: str, rns: str, world: _World, gen: int, grants: bool = True):
    """(backends, mirrors, backend_mirrors, ResolvedRefs condition) of a route's spec.

    ``grants`` False checks references as a mesh does (no ReferenceGrant needed)."""
    backends: list[list[BackendCheck]] = []
    mirrors: dict[tuple[int, int], BackendCheck] = {}
    backend_mirrors: dict[tuple[int, int, int], BackendCheck] = {}
    ref_failures: list[BackendCheck] = []
    unsupported_filters: list[str] = []
    for ri, rule in enumerate(spec.get("rules") or []):
        checks = [_check_backend(ref, kind, rns, world, grants) for ref in rule.get("backendRefs") or []]
        backends.append(checks)
        ref_failures += [c for c in checks if not c.valid]
        for fi, flt in enumerate(rule.get("filters") or []):
            if flt.get("type") == "RequestMirror":
                mc = _check_backend((flt.get("requestMirror") or {}).get("backendRef") or {}, kind, rns, world,
                                    grants)
                mc.weight = 1
                mirrors[(ri, fi)] = mc
                if not mc.valid:
                    ref_failures.append(mc)
            elif flt.get("type") == "ExtensionRef":
                ext = flt.get("extensionRef") or {}
                unsupported_filters.append(
                    f"rules[{ri}].filters[{fi}]: extensionRef {ext.get('group', '')}/{ext.get('kind', '')} "
                    f"{ext.get('name', '')} is not a filter gwlib implements")
        for bi, ref in enumerate(rule.get("backendRefs") or []):
            for fi, flt in enumerate(ref.get("filters") or []):
                if flt.get("type") == "RequestMirror":
                    mc = _check_backend((flt.get("requestMirror") or {}).get("backendRef") or {}, kind, rns,
                                        world, grants)
                    mc.weight = 1
                    backend_mirrors[(ri, bi, fi)] = mc
                    if not mc.valid:
                        ref_failures.append(mc)
                elif flt.get("type") == "ExtensionRef":
                    ext = flt.get("extensionRef") or {}
                    unsupported_filters.append(
                        f"rules[{ri}].backendRefs[{bi}].filters[{fi}]: extensionRef "
                        f"{ext.get('group', '')}/{ext.get('kind', '')} {ext.get('name', '')} is not a filter gwlib implements")

    if ref_failures:
        resolved = Condition("ResolvedRefs", "False", ref_failures[0].reason,
                             "; ".join(dict.fromkeys(c.message for c in ref_failures)), gen)
    elif unsupported_filters:
        resolved = Condition("ResolvedRefs", "False", "InvalidKind", "; ".join(unsupported_filters), gen)
    else:
        resolved = Condition("ResolvedRefs", "True", "ResolvedRefs", "All references are resolved", gen)
    return backends, mirrors, backend_mirrors, resolved


def _reconcile_route(doc: dict, gateways: dict[str, GatewayState], world: _World) -> RouteState:
    from . import matching

    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    rns = _namespace(doc) or "default"
    gen = _generation(doc)
    rs = RouteState(obj=doc, kind=kind, key=_key(doc), spec=spec, generation=gen,
                    created=parse_timestamp((doc.get("metadata") or {}).get("creationTimestamp")))

    # --- references (independent of the parents)
    rs.backends, rs.mirrors, rs.backend_mirrors, resolved = _references(spec, kind, rns, world, gen)
    for ri, rule in enumerate(spec.get("rules") or []):
        why = _rule_problem(kind, rule)
        if why:
            rs.dropped_reasons[ri], rs.dropped_rules[ri] = why

    n_rules = len(spec.get("rules") or [])
    all_dropped = n_rules > 0 and len(rs.dropped_rules) == n_rules
    route_hostnames = [h for h in spec.get("hostnames") or []] if kind in HOSTNAME_KINDS else []

    # --- parents
    for pi, ref in enumerate(spec.get("parentRefs") or []):
        pgroup = ref.get("group")
        pgroup = GATEWAY_GROUP if pgroup is None else pgroup
        pkind = ref.get("kind") or "Gateway"
        pns = ref.get("namespace") or rns
        pname = ref.get("name") or ""
        section = ref.get("sectionName")
        port = ref.get("port")
        if pkind == "Service" and pgroup in SERVICE_GROUPS:
            # GAMMA (mesh) parent: reconciled by _reconcile_mesh once every route is known
            rs.mesh_parents.append((pi, f"{pns}/{pname}", port))
            continue
        if pkind != "Gateway" or pgroup != GATEWAY_GROUP:
            continue  # not a parent kind gwlib owns: no status entry
        gw = gateways.get(f"{pns}/{pname}")
        if gw is None:
            continue  # Gateway absent or of a class gwlib does not implement: left alone
        rs.parent_controllers[pi] = gw.controller_name
        sel = [l for l in gw.listeners
               if (section is None or l.name == section) and (port is None or l.port == int(port))]
        accepted: Condition
        if not sel:
            what = " and ".join(x for x in (f'sectionName "{section}"' if section is not None else "",
                                             f"port {port}" if port is not None else "") if x)
            accepted = Condition("Accepted", "False", "NoMatchingParent",
                                 f"Gateway {gw.key} has no listener matching {what}", gen)
        else:
            allowed = [l for l in sel if _kind_allowed(l, kind) and _ns_allowed(l, gw.namespace, rns, world)]
            if not allowed:
                why = []
                for l in sel:
                    if not _kind_allowed(l, kind):
                        why.append(f"{l.name} does not allow {kind}")
                    else:
                        frm = (l.allowed_routes.get("namespaces") or {}).get("from", "Same")
                        why.append(f"{l.name} does not allow routes from namespace {rns} (from: {frm})")
                accepted = Condition("Accepted", "False", "NotAllowedByListeners",
                                     f"No listener of Gateway {gw.key} allows this route: " + "; ".join(why), gen)
            else:
                matched: list[tuple[ListenerState, list[str]]] = []
                for l in allowed:
                    if kind in HOSTNAME_KINDS:
                        hosts = matching.intersect_hostnames(l.hostname, route_hostnames)
                        if hosts:
                            matched.append((l, list(hosts)))
                    else:
                        matched.append((l, ["*"]))
                if not matched:
                    accepted = Condition("Accepted", "False", "NoMatchingListenerHostname",
                                         f"No hostname of the route ({', '.join(route_hostnames)}) intersects "
                                         f"a listener hostname of Gateway {gw.key} "
                                         f"({', '.join(l.hostname or '*' for l in allowed)})", gen)
                elif all_dropped:
                    reasons = set(rs.dropped_reasons.values())
                    accepted = Condition("Accepted", "False",
                                         "IncompatibleFilters" if reasons == {"IncompatibleFilters"}
                                         else "UnsupportedValue",
                                         "Every rule is invalid: " + "; ".join(
                                             f"rules[{i}]: {m}" for i, m in sorted(rs.dropped_rules.items())), gen)
                else:
                    accepted = Condition("Accepted", "True", "Accepted", "Route is accepted", gen)
                    for l, hosts in matched:
                        rs.attachments.append(Attachment(parent_index=pi, gateway_key=gw.key, listener=l.name,
                                                         port=l.port, hostnames=hosts))
        conds = [accepted, resolved]
        if accepted.status == "True" and rs.dropped_rules:
            conds.append(Condition("PartiallyInvalid", "True", "UnsupportedValue",
                                   "Dropped Rule(s): " + "; ".join(
                                       f"rules[{i}]: {m}" for i, m in sorted(rs.dropped_rules.items())), gen))
        rs.parents[pi] = conds
    return rs


# --------------------------------------------------------------------------- mesh (GAMMA)

def _service_parent_problem(svc: dict | None, key: str) -> str | None:
    """Why a Service cannot be a mesh parent (GEP-1294 "Allowed service types"), or None."""
    if svc is None:
        return f"Service {key} not found"
    sspec = svc.get("spec") or {}
    if sspec.get("type") == "ExternalName":
        return f"Service {key} is of type ExternalName: it has no cluster IP and cannot be a parent"
    if sspec.get("clusterIP") == "None":
        return f"Service {key} is headless: parent service must have a ClusterIP"
    return None


def _reconcile_mesh(routes: list[RouteState], world: _World) -> None:
    """Attachment and status of every Service (mesh) parent, as a mesh controller writes it.

    Two passes: first each (route, Service parent) is checked on its own (Service exists
    and has a cluster IP; ``port``/``sectionName`` select Service ports; rules valid); then
    route types are resolved per Service port and group of routes (GRPCRoute wins over
    HTTPRoute, GEP-1294 "Route types")."""
    # pass 1: candidate ports per (route, parent)
    candidates: dict[tuple[int, int], list[int]] = {}      # (route idx, parent idx) -> ports
    verdicts: dict[tuple[int, int], Condition] = {}        # a final Accepted=False
    resolved_of: dict[int, Condition] = {}
    for ri, rs in enumerate(routes):
        if not rs.mesh_parents or rs.kind not in MESH_KINDS:
            continue
        rns = rs.namespace
        gen = rs.generation
        rs.mesh_backends, rs.mesh_mirrors, rs.mesh_backend_mirrors, resolved_of[ri] = _references(
            rs.spec, rs.kind, rns, world, gen, grants=False)
        refs = rs.spec.get("parentRefs") or []
        n_rules = len(rs.spec.get("rules") or [])
        all_dropped = n_rules > 0 and len(rs.dropped_rules) == n_rules
        for pi, svc_key, port in rs.mesh_parents:
            rs.parent_controllers[pi] = MESH_CONTROLLER_NAME
            section = refs[pi].get("sectionName")
            svc = world.services.get(svc_key)
            why = _service_parent_problem(svc, svc_key)
            if why:
                verdicts[(ri, pi)] = Condition("Accepted", "False", "NoMatchingParent", why, gen)
                continue
            sports = (svc.get("spec") or {}).get("ports") or []
            ports = [int(sp["port"]) for sp in sports if sp.get("port") is not None
                     and (port is None or int(sp["port"]) == int(port))
                     and (section is None or sp.get("name") == section)]
            if not ports:
                what = " and ".join(x for x in (f'sectionName (port name) "{section}"' if section is not None else "",
                                                 f"port {port}" if port is not None else "") if x)
                have = ", ".join(f"{sp.get('port')}" + (f" ({sp['name']})" if sp.get("name") else "")
                                 for sp in sports)
                verdicts[(ri, pi)] = Condition("Accepted", "False", "NoMatchingParent",
                                               f"Service {svc_key} has no port matching {what}"
                                               + (f" (ports: {have})" if have else ""), gen)
                continue
            if all_dropped:
                reasons = set(rs.dropped_reasons.values())
                verdicts[(ri, pi)] = Condition(
                    "Accepted", "False",
                    "IncompatibleFilters" if reasons == {"IncompatibleFilters"} else "UnsupportedValue",
                    "Every rule is invalid: " + "; ".join(f"rules[{i}]: {m}" for i, m in sorted(rs.dropped_rules.items())),
                    gen)
                continue
            candidates[(ri, pi)] = sorted(set(ports))

    # pass 2: route types per (Service, port, group); group = "producer" or the consumer namespace
    def group(rs: RouteState, svc_key: str) -> str:
        return "producer" if rs.namespace == svc_key.split("/", 1)[0] else rs.namespace

    grpc_at: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for (ri, pi), ports in candidates.items():
        rs = routes[ri]
        if rs.kind == "GRPCRoute":
            svc_key = next(s for i, s, _ in rs.mesh_parents if i == pi)
            for p in ports:
                grpc_at[(svc_key, p, group(rs, svc_key))].append(rs.key)

    for ri, rs in enumerate(routes):
        if ri not in resolved_of:
            continue
        gen = rs.generation
        for pi, svc_key, _port in rs.mesh_parents:
            if (ri, pi) in verdicts:
                rs.parents[pi] = [verdicts[(ri, pi)], resolved_of[ri]]
                continue
            ports = candidates[(ri, pi)]
            lost: dict[int, list[str]] = {}
            if rs.kind == "HTTPRoute":
                for p in ports:
                    winners = grpc_at.get((svc_key, p, group(rs, svc_key)))
                    if winners:
                        lost[p] = winners
            kept = [p for p in ports if p not in lost]
            role = ("producer route: applies to every meshed client" if group(rs, svc_key) == "producer"
                    else f"consumer route: applies only to meshed clients in namespace {rs.namespace}")
            if not kept:
                accepted = Condition("Accepted", "False", "RouteReasonConflicted",
                                     f"GRPCRoute(s) {', '.join(sorted(set(sum(lost.values(), []))))} attach to "
                                     f"Service {svc_key} port(s) {', '.join(str(p) for p in sorted(lost))}: "
                                     "a GRPCRoute wins over an HTTPRoute on the same Service port (GEP-1294)", gen)
            else:
                note = (f"; port(s) {', '.join(str(p) for p in sorted(lost))} conflicted: a GRPCRoute wins there"
                        if lost else "")
                accepted = Condition("Accepted", "True", "Accepted",
                                     f"Route is accepted by the mesh for Service {svc_key} port(s) "
                                     f"{', '.join(str(p) for p in kept)} ({role}){note}", gen)
                rs.mesh_ports[pi] = kept
                for p in kept:
                    rs.attachments.append(Attachment(parent_index=pi, gateway_key=svc_key, listener=None,
                                                     port=p, hostnames=["*"]))
            conds = [accepted, resolved_of[ri]]
            if accepted.status == "True" and rs.dropped_rules:
                conds.append(Condition("PartiallyInvalid", "True", "UnsupportedValue",
                                       "Dropped Rule(s): " + "; ".join(
                                           f"rules[{i}]: {m}" for i, m in sorted(rs.dropped_rules.items())), gen))
            rs.parents[pi] = conds


# --------------------------------------------------------------------------- reconcile

def reconcile(objects: list) -> ControllerResult:
    """Compute classes, Gateways (listeners), route attachment and every status condition.

    ``objects``: gwlib resources (``gwlib.load``) or plain manifest dicts, in any order.
    """
    docs = [_as_dict(o) for o in objects]
    world = _World(docs)
    result = ControllerResult(documents=docs, services=dict(world.services))

    for d in world.by_kind["GatewayClass"]:
        cls = _reconcile_class(d, world)
        result.classes[cls.name] = cls

    gateways: dict[str, GatewayState] = {}
    for d in world.by_kind["Gateway"]:
        cname = (d.get("spec") or {}).get("gatewayClassName") or ""
        cls = result.classes.get(cname)
        if cls is None or not cls.accepted:
            continue
        gw = _reconcile_gateway(d, cls, world)
        gateways[gw.key] = gw
        result.gateways.append(gw)

    for d in docs:
        if d.get("kind") in ROUTE_KINDS:
            result.routes.append(_reconcile_route(d, gateways, world))
    _reconcile_mesh(result.routes, world)

    # attachedRoutes: accepted routes per listener (a route counts once per listener)
    counted: dict[tuple[str, str], set] = defaultdict(set)
    for rs in result.routes:
        for a in rs.attachments:
            counted[(a.gateway_key, a.listener or "")].add((rs.kind, rs.key))
    for gw in result.gateways:
        for l in gw.listeners:
            l.attached_routes = len(counted.get((gw.key, l.name), ()))
    return result
