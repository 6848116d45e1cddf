"""The intermediate representation (IR): what every data plane is programmed from.

Computed ONCE from a :class:`~gwlib.controller.ControllerResult` by :func:`build`. Plain
data only (dataclasses, dicts in CRD JSON shape, strings, numbers): the reference router,
the Envoy translator and the Traefik translator all read it, and none of them re-derives
Gateway API semantics. Every precedence rule lives here.

Shape::

    IR.gateways["ns/name"] -> GatewayIR
        .listeners               [ListenerIR] (ready listeners, spec order)
        .ports[port]             [ListenerIR] on that port, most specific hostname first
    ListenerIR
        .vhosts["foo.com"]       VirtualHost for an exact host (dict lookup)
        .wildcards["*.foo.com"]  VirtualHost for hosts under a wildcard (lookup walks the
                                 labels of the request host: O(labels), not O(hostnames))
        .fallback                VirtualHost for any other host (routes without hostnames)
        .l4                      [L4Route] for TCP/UDP/TLS listeners, in precedence order
    VirtualHost
        .http                    [RouteEntry] fully ordered HTTPRoute matches
        .grpc                    [RouteEntry] fully ordered GRPCRoute matches
    RouteEntry                   one match of one rule of one route + its Action
    Action                       filters in order, weighted backends, mirrors, timeouts

Precedence (first entry whose match matches the request wins):

* HTTPRoute: (1) hostname: more characters in a matching non-wildcard hostname, then more
  characters in a matching hostname (routes without hostnames last); (2) the HTTPRouteMatch:
  Exact path, longest PathPrefix, method, most header matches, most query matches
  (:func:`gwlib.matching.http_match_precedence_key`); (3) oldest creationTimestamp;
  (4) "namespace/name" alphabetically; (5) rule order, then match order within the rule.
* GRPCRoute: (1) hostname as above; (2) more characters in the matched service, then
  method, then more header matches (:func:`gwlib.matching.grpc_match_precedence_key`);
  (3)-(5) as above. GRPCRoutes and HTTPRoutes are never merged into one table.
* A virtual host's table holds the entries of its own hostname AND of every less specific
  hostname that also covers it (wildcards, then no hostname): a request that matches no
  rule of the most specific hostname falls through to less specific ones, as the spec's
  "precedence" (not exclusion) wording requires.

Choices where the spec is silent (documented here and in notebook 03):

* Routes without a ``creationTimestamp`` (manifests that were never applied) are treated as
  newer than any route that has one; among themselves the namespace/name rule decides.
* Every backendRef weight 0 (and at least one backendRef): the rule answers 500, like an
  empty backendRefs list. v1.6.1 says only that weight 0 receives no traffic; Envoy-based
  implementations answer 500 (Kuma 503). A weight-0 entry never receives traffic and never
  causes an error, even if it names a Service that does not exist.
* RegularExpression path matches rank after Exact and before every PathPrefix match
  (the matching module's choice, as Envoy Gateway).
* Invalid shares of a weighted rule answer 500 (spec); they are part of the split as the
  pseudo-backend key ``"500"``.
* A rule with an unsupported filter (ExtensionRef gwlib does not implement) answers 500
  for all of its traffic ("MUST NOT be skipped ... MUST receive a HTTP error response").
* Mirrors are sent for every request the rule forwards (the weighted choice was made),
  including a share that answers 500; not for redirects, preflights or rule-level 500s.
* L4 (TCP/UDP) listeners with several attached routes use the oldest route (then
  namespace/name); its first rule decides. TLS listeners pick the TLSRoute by SNI with the
  hostname precedence above.

The mesh (GAMMA) part::

    IR.mesh["ns/svc"] -> MeshService          every Service, with or without routes
        .ports[8080]  -> MeshPort
            .producer               MeshTable: producer routes (the Service's namespace)
            .consumers["client-ns"] MeshTable: consumer routes of that namespace
            .default                Action: the Service itself (no route; unmeshed callers)
            .table(client_ns)       consumer table of client_ns, else the producer table
    MeshTable(VirtualHost)          .http / .grpc entries in precedence order, hostname "*"
    IR.workloads["ns/deploy"]       Workload: meshed or not, and why (gwlib.mesh.inject)

A mesh table is built by the same code as a listener's table (:func:`_entries_for`, the same
precedence keys, the same :class:`Action`), with every entry under hostname ``"*"``: GAMMA
implementations infer nothing from ``hostnames`` (GEP-1294). Which table a request uses is
GEP-1294 "Multiple routes for a Service": requests from a namespace with consumer routes for
the Service port use those (merged), every other request the producer routes (merged);
the two groups are never merged with each other. Mesh actions use the route's mesh backend
checks (no ReferenceGrant needed, GEP-1294 "Namespace boundaries").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .controller import ControllerResult, GatewayState, ListenerState, RouteState

#: Pseudo-backend key of the share of traffic that answers 500 (invalid backends).
ERROR_KEY = "500"

DEFAULT_HTTP_MATCH = {"path": {"type": "PathPrefix", "value": "/"}}


@dataclass
class Backend:
    """One weighted backendRef of a rule (or the target of a mirror)."""
    namespace: str
    name: str
    port: int | None
    weight: int = 1
    valid: bool = True
    reason: str = "ResolvedRefs"
    message: str = ""
    kind: str = "Service"
    group: str = ""
    filters: list[dict] = field(default_factory=list)   # backendRef-level filters, in order

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def ref(self) -> dict:
        """The backend as an answer shows it."""
        return {"namespace": self.namespace, "name": self.name, "port": self.port}


@dataclass
class Mirror:
    backend: Backend
    fraction: float             # 0.0-1.0 of requests copied
    filter_index: int


@dataclass
class Action:
    """What a matched rule does with a request."""
    filters: list[dict] = field(default_factory=list)     # rule filters, CRD JSON, in order
    backends: list[Backend] = field(default_factory=list) # every backendRef (invalid ones too)
    mirrors: list[Mirror] = field(default_factory=list)   # RequestMirror filters with a valid target
    timeouts: dict = field(default_factory=dict)          # {"request": "10s", "backendRequest": ...}
    error_status: int | None = None                        # set: every request answers this status
    error_reason: str = ""
    redirect: dict | None = None                           # the RequestRedirect filter, if any
    total_weight: int = 0
    # [(backend or None for a 500 share, probability)], exact, weight-0 entries left out
    split: list[tuple[Backend | None, float]] = field(default_factory=list)
    cumulative: list[tuple[int, Backend | None]] = field(default_factory=list)  # for sampling

    def split_dict(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for b, p in self.split:
            k = ERROR_KEY if b is None else b.key
            out[k] = out.get(k, 0.0) + p
        return out


@dataclass
class RouteEntry:
    """One match of one rule of one route, in a virtual host's ordered table."""
    route: str                  # "ns/name"
    kind: str                   # HTTPRoute | GRPCRoute
    rule: int
    match_index: int
    match: dict                 # HTTPRouteMatch / GRPCRouteMatch (CRD JSON, defaults applied)
    hostname: str               # the route hostname this entry serves ("*" = any)
    precedence: tuple           # the full sort key (ascending = wins)
    action: Action
    created: str | None = None  # creationTimestamp (RFC 3339) or None
    rule_name: str | None = None
    matched_prefix: str | None = None   # PathPrefix value (for ReplacePrefixMatch)


@dataclass
class VirtualHost:
    hostname: str               # "foo.com", "*.foo.com" or "*"
    http: list[RouteEntry] = field(default_factory=list)
    grpc: list[RouteEntry] = field(default_factory=list)


@dataclass
class L4Route:
    route: str
    kind: str                   # TCPRoute | UDPRoute | TLSRoute
    hostnames: list[str]        # TLSRoute: effective SNI hostnames; ["*"] otherwise
    precedence: tuple
    action: Action
    created: str | None = None


@dataclass
class ListenerIR:
    gateway: str
    name: str
    port: int
    protocol: str
    hostname: str | None
    tls_mode: str | None
    certificates: list[dict] = field(default_factory=list)
    vhosts: dict[str, VirtualHost] = field(default_factory=dict)
    wildcards: dict[str, VirtualHost] = field(default_factory=dict)
    fallback: VirtualHost | None = None
    l4: list[L4Route] = field(default_factory=list)

    def lookup(self, host: str) -> VirtualHost | None:
        """The virtual host serving ``host`` (lower-case, no port): exact, then the most
        specific wildcard, then the catch-all. Cost: one dict lookup per label of host."""
        vh = self.vhosts.get(host)
        if vh is not None:
            return vh
        if self.wildcards:
            rest = host
            while True:
                dot = rest.find(".")
                if dot < 0:
                    break
                rest = rest[dot + 1:]
                vh = self.wildcards.get("*." + rest)
                if vh is not None:
                    return vh
        return self.fallback

    def entries(self, kind: str = "HTTPRoute") -> list[RouteEntry]:
        """Every distinct route entry of this listener (each route hostname once), in global
        precedence order: what a data plane with explicit priorities (Traefik) needs."""
        seen: set[int] = set()
        out: list[RouteEntry] = []
        for vh in self.virtual_hosts():
            for e in (vh.http if kind == "HTTPRoute" else vh.grpc):
                if id(e) not in seen:
                    seen.add(id(e))
                    out.append(e)
        out.sort(key=lambda e: e.precedence)
        return out

    def virtual_hosts(self) -> list[VirtualHost]:
        out = list(self.vhosts.values()) + list(self.wildcards.values())
        if self.fallback is not None:
            out.append(self.fallback)
        return out


@dataclass
class GatewayIR:
    key: str
    class_name: str
    controller_name: str
    addresses: list[dict]
    listeners: list[ListenerIR] = field(default_factory=list)       # ready listeners, spec order
    ports: dict[int, list[ListenerIR]] = field(default_factory=dict)
    not_ready: dict[str, str] = field(default_factory=dict)        # listener name -> why

    @property
    def address(self) -> str:
        return self.addresses[0]["value"] if self.addresses else "127.0.0.1"


@dataclass
class MeshTable(VirtualHost):
    """The GAMMA routes one group of clients uses for one Service port (hostname "*")."""
    group: str = "producer"       # "producer" | "consumer"
    namespace: str = ""           # the routes' namespace (producer: the Service's)
    routes: list[str] = field(default_factory=list)   # route keys in the table


@dataclass
class MeshPort:
    """One Service port as the mesh sees it."""
    service: str                  # "ns/name"
    port: int
    name: str | None = None       # the Service port's name (what sectionName selects)
    app_protocol: str | None = None
    protocol: str = "http"        # "http" | "h2c" (gRPC): what the port's endpoints speak
    producer: MeshTable | None = None
    consumers: dict[str, MeshTable] = field(default_factory=dict)
    default: Action = field(default_factory=Action)   # no route: the Service itself

    def table(self, client_namespace: str) -> MeshTable | None:
        """The routes for a meshed client in ``client_namespace`` (None: no route)."""
        return self.consumers.get(client_namespace) or self.producer


@dataclass
class MeshService:
    key: str
    problem: str | None = None    # why it cannot be a mesh parent (headless, ExternalName)
    ports: dict[int, MeshPort] = field(default_factory=dict)


@dataclass
class IR:
    gateways: dict[str, GatewayIR] = field(default_factory=dict)
    services: dict[str, dict] = field(default_factory=dict)         # "ns/name" -> Service JSON
    mesh_routes: list[tuple[str, str, int, str | None]] = field(default_factory=list)
    # GAMMA hook: [(route kind, route key, parent index, "ns/service")] — every Service parentRef
    mesh: dict[str, MeshService] = field(default_factory=dict)      # "ns/name" -> the mesh's view
    workloads: dict[str, Any] = field(default_factory=dict)         # "ns/name" -> gwlib.mesh.inject.Workload
    mesh_namespaces: dict[str, bool] = field(default_factory=dict)  # namespace -> new pods meshed


# --------------------------------------------------------------------------- keys

def _ts_key(created: datetime | None) -> tuple:
    # Choice: no creationTimestamp = newer than any route that has one.
    return (0, created.timestamp()) if created is not None else (1, 0.0)


def _host_key(hostname: str) -> tuple:
    from . import matching
    if hostname == "*":
        return (1,)
    return (0, matching.hostname_precedence_key(hostname))


def _iso(created: datetime | None) -> str | None:
    if created is None:
        return None
    return created.strftime("%Y-%m-%dT%H:%M:%SZ") if created.utcoffset().total_seconds() == 0 \
        else created.isoformat()


def listener_host_key(hostname: str | None) -> tuple:
    """Listener selection order: exact, then wildcards with more labels, then none."""
    if not hostname:
        return (2, 0, "")
    if hostname.startswith("*."):
        return (1, -hostname.count("."), hostname)
    return (0, 0, hostname)


# --------------------------------------------------------------------------- actions

def _backend_from_check(check, filters: list[dict] | None = None) -> Backend:
    return Backend(namespace=check.namespace, name=check.name,
                   port=int(check.port) if check.port is not None else None,
                   weight=check.weight, valid=check.valid, reason=check.reason, message=check.message,
                   kind=check.kind, group=check.group, filters=list(filters or []))


def _build_action(rs: RouteState, ri: int, rule: dict, mesh: bool = False) -> Action:
    from . import filters as _filters

    filters = list(rule.get("filters") or [])
    all_checks = rs.mesh_backends if mesh else rs.backends
    mirror_checks = rs.mesh_mirrors if mesh else rs.mirrors
    checks = all_checks[ri] if ri < len(all_checks) else []
    refs = rule.get("backendRefs") or []
    backends = [_backend_from_check(c, (refs[bi].get("filters") if bi < len(refs) else None))
                for bi, c in enumerate(checks)]
    act = Action(filters=filters, backends=backends, timeouts=dict(rule.get("timeouts") or {}))
    for fi, f in enumerate(filters):
        t = f.get("type")
        if t == "RequestRedirect":
            act.redirect = f.get("requestRedirect") or {}
        elif t == "RequestMirror":
            mc = mirror_checks.get((ri, fi))
            if mc is not None and mc.valid:
                act.mirrors.append(Mirror(_backend_from_check(mc),
                                          _filters.mirror_fraction(f.get("requestMirror") or {}), fi))
        elif t == "ExtensionRef":
            act.error_status, act.error_reason = 500, "unsupported ExtensionRef filter (it must not be skipped)"
    for bi, ref in enumerate(refs):
        for f in ref.get("filters") or []:
            if f.get("type") == "ExtensionRef":
                act.error_status = 500
                act.error_reason = f"backendRefs[{bi}] has an unsupported ExtensionRef filter"

    act.total_weight = sum(max(b.weight, 0) for b in backends)
    if act.error_status is None and act.redirect is None:
        if not backends:
            act.error_status, act.error_reason = 500, "the rule has no backendRefs"
        elif act.total_weight == 0:
            # Choice (spec silent): every weight 0 -> 500, like an empty backendRefs list.
            act.error_status, act.error_reason = 500, "every backendRef has weight 0"
        elif not any(b.valid and b.weight > 0 for b in backends):
            act.error_status, act.error_reason = 500, "every backendRef is invalid: " + "; ".join(
                b.message for b in backends if not b.valid and b.weight > 0)
    if act.total_weight > 0:
        acc = 0
        for b in backends:
            if b.weight <= 0:
                continue  # weight 0: no traffic, never an error
            p = b.weight / act.total_weight
            act.split.append((b if b.valid else None, p))
            acc += b.weight
            act.cumulative.append((acc, b if b.valid else None))
    return act


# --------------------------------------------------------------------------- build

def _rules_of(rs: RouteState) -> list[dict]:
    rules = rs.spec.get("rules") or []
    if not rules and rs.kind == "HTTPRoute":
        rules = [{"matches": [dict(DEFAULT_HTTP_MATCH)]}]  # API-server default
    if not rules and rs.kind == "GRPCRoute":
        rules = [{}]
    return rules


def _http_matches(rule: dict) -> list[dict]:
    matches = rule.get("matches") or [dict(DEFAULT_HTTP_MATCH)]
    out = []
    for m in matches:
        m = dict(m)
        if not m.get("path"):
            m["path"] = dict(DEFAULT_HTTP_MATCH["path"])
        else:
            p = dict(m["path"])
            p.setdefault("type", "PathPrefix")
            if p.get("value") is None:
                p["value"] = "/"
            m["path"] = p
        out.append(m)
    return out


def _entries_for(rs: RouteState, hostnames: list[str], actions: dict[int, Action]) -> list[RouteEntry]:
    from . import matching

    out = []
    created = _iso(rs.created)
    ts = _ts_key(rs.created)
    for ri, rule in enumerate(_rules_of(rs)):
        if ri in rs.dropped_rules:
            continue
        act = actions[ri]
        if rs.kind == "HTTPRoute":
            matches = _http_matches(rule)
            mkey = matching.http_match_precedence_key
        else:
            matches = rule.get("matches") or [{}]
            mkey = matching.grpc_match_precedence_key
        for mi, m in enumerate(matches):
            k = mkey(m)
            prefix = None
            if rs.kind == "HTTPRoute" and (m.get("path") or {}).get("type") == "PathPrefix":
                prefix = m["path"].get("value") or "/"
            for h in hostnames:
                out.append(RouteEntry(route=rs.key, kind=rs.kind, rule=ri, match_index=mi, match=m, hostname=h,
                                      precedence=(_host_key(h), k, ts, rs.key, ri, mi), action=act,
                                      created=created, rule_name=rule.get("name"), matched_prefix=prefix))
    return out


def _build_listener(gw: GatewayState, l: ListenerState, attached: list[tuple[RouteState, list[str]]],
                    actions: dict[tuple[str, str], dict[int, Action]]) -> ListenerIR:
    from . import matching

    lir = ListenerIR(gateway=gw.key, name=l.name, port=l.port, protocol=l.protocol, hostname=l.hostname,
                     tls_mode=l.tls_mode, certificates=list(l.certificate_refs))
    if l.protocol in ("HTTP", "HTTPS"):
        by_host: dict[str, list[RouteEntry]] = {}
        for rs, hosts in attached:
            if rs.kind not in ("HTTPRoute", "GRPCRoute"):
                continue
            hosts = sorted(set(h.lower() for h in hosts))
            for e in _entries_for(rs, hosts, actions[(rs.kind, rs.key)]):
                by_host.setdefault(e.hostname, []).append(e)
        wild = {h: es for h, es in by_host.items() if h.startswith("*.")}
        any_entries = by_host.get("*", [])

        def make(hostname: str, entries: list[RouteEntry]) -> VirtualHost:
            entries = sorted(entries, key=lambda e: e.precedence)
            return VirtualHost(hostname=hostname,
                               http=[e for e in entries if e.kind == "HTTPRoute"],
                               grpc=[e for e in entries if e.kind == "GRPCRoute"])

        for h, es in by_host.items():
            if h == "*" or h.startswith("*."):
                continue
            covering = [e for w, wes in wild.items() if matching.hostname_matches(w, h) for e in wes]
            lir.vhosts[h] = make(h, es + covering + any_entries)
        for w, es in wild.items():
            suffix = w[1:]  # ".example.com"
            covering = [e for w2, wes in wild.items()
                        if w2 != w and suffix.endswith(w2[1:]) for e in wes]
            lir.wildcards[w] = make(w, es + covering + any_entries)
        if any_entries:
            lir.fallback = make("*", any_entries)
    else:
        kind = {"TCP": "TCPRoute", "UDP": "UDPRoute", "TLS": "TLSRoute"}[l.protocol]
        for rs, hosts in attached:
            if rs.kind != kind:
                continue
            rules = _rules_of(rs)
            if not rules:
                continue
            act = actions[(rs.kind, rs.key)][0]
            hosts = sorted(set(h.lower() for h in hosts)) or ["*"]
            best = min(_host_key(h) for h in hosts)
            lir.l4.append(L4Route(route=rs.key, kind=rs.kind, hostnames=hosts,
                                  precedence=(best, _ts_key(rs.created), rs.key), action=act,
                                  created=_iso(rs.created)))
        lir.l4.sort(key=lambda r: r.precedence)
    return lir


def service_action(namespace: str, name: str, port: int | None) -> Action:
    """The action of "no route": everything to the Service port itself."""
    b = Backend(namespace=namespace, name=name, port=port, message=f"Service {namespace}/{name}:{port}")
    return Action(backends=[b], total_weight=1, split=[(b, 1.0)], cumulative=[(1, b)])


def _port_protocol(sport: dict, kinds: set[str]) -> str:
    """What a Service port's endpoints speak: h2c for gRPC ports, else HTTP/1.1."""
    app = (sport.get("appProtocol") or "").lower()
    name = (sport.get("name") or "").lower()
    if "GRPCRoute" in kinds or app in ("kubernetes.io/h2c", "grpc", "h2c", "http2") \
            or name.startswith(("grpc", "h2c", "http2")):
        return "h2c"
    return "http"


def _build_mesh(result: ControllerResult, ir: IR) -> None:
    """IR.mesh (every Service, its ports and their producer/consumer tables) and the
    workloads' mesh membership."""
    from .controller import _service_parent_problem
    from .mesh import inject

    tables: dict[tuple[str, int], dict[str, list[RouteEntry]]] = {}
    kinds_at: dict[tuple[str, int], set[str]] = {}
    for rs in result.routes:
        mesh_att = [a for a in rs.attachments if a.listener is None]
        if not mesh_att:
            continue
        actions = {ri: _build_action(rs, ri, rule, mesh=True) for ri, rule in enumerate(_rules_of(rs))}
        entries = _entries_for(rs, ["*"], actions)
        for a in mesh_att:
            key = (a.gateway_key, int(a.port))
            group = "" if rs.namespace == a.gateway_key.split("/", 1)[0] else rs.namespace
            bucket = tables.setdefault(key, {}).setdefault(group, [])
            if not any(e.route == rs.key and e.kind == rs.kind for e in bucket):
                bucket.extend(entries)
            kinds_at.setdefault(key, set()).add(rs.kind)

    for skey, svc in sorted(result.services.items()):
        ns, name = skey.split("/", 1)
        ms = MeshService(key=skey, problem=_service_parent_problem(svc, skey))
        for sport in (svc.get("spec") or {}).get("ports") or []:
            if sport.get("port") is None:
                continue
            port = int(sport["port"])
            mp = MeshPort(service=skey, port=port, name=sport.get("name"), app_protocol=sport.get("appProtocol"),
                          protocol=_port_protocol(sport, kinds_at.get((skey, port), set())),
                          default=service_action(ns, name, port))
            for group, entries in sorted(tables.get((skey, port), {}).items()):
                entries = sorted(entries, key=lambda e: e.precedence)
                table = MeshTable(hostname="*", http=[e for e in entries if e.kind == "HTTPRoute"],
                                  grpc=[e for e in entries if e.kind == "GRPCRoute"],
                                  group="consumer" if group else "producer", namespace=group or ns,
                                  routes=list(dict.fromkeys(e.route for e in entries)))
                if group:
                    mp.consumers[group] = table
                else:
                    mp.producer = table
            ms.ports[port] = mp
        ir.mesh[skey] = ms

    ann = inject.namespace_annotations(result.documents)
    namespaces = set(ann) | {k.split("/", 1)[0] for k in result.services}
    for w in inject.workloads(result.documents):
        ir.workloads[w.key] = w
        namespaces.add(w.namespace)
    ir.mesh_namespaces = {n: inject.namespace_meshed(n, ann) for n in sorted(namespaces)}


def build(result: ControllerResult) -> IR:
    """The IR of a reconciled set of resources (computed once; read by every data plane)."""
    ir = IR(services=dict(result.services))
    actions: dict[tuple[str, str], dict[int, Action]] = {}
    for rs in result.routes:
        if any(a.listener is not None for a in rs.attachments):
            actions[(rs.kind, rs.key)] = {ri: _build_action(rs, ri, rule) for ri, rule in enumerate(_rules_of(rs))}
        for pi, svc, _port in rs.mesh_parents:
            ir.mesh_routes.append((rs.kind, rs.key, pi, svc))
    _build_mesh(result, ir)

    # (gateway, listener) -> [(route, hostnames)]
    attached: dict[tuple[str, str], list[tuple[RouteState, list[str]]]] = {}
    for rs in result.routes:
        merged: dict[tuple[str, str], list[str]] = {}
        for a in rs.attachments:
            if a.listener is None:
                continue  # mesh (Service) attachments: IR.mesh
            merged.setdefault((a.gateway_key, a.listener or ""), [])
            for h in a.hostnames:
                if h not in merged[(a.gateway_key, a.listener or "")]:
                    merged[(a.gateway_key, a.listener or "")].append(h)
        for k, hosts in merged.items():
            attached.setdefault(k, []).append((rs, hosts))

    for gw in result.gateways:
        gir = GatewayIR(key=gw.key, class_name=gw.class_name, controller_name=gw.controller_name,
                        addresses=[dict(a) for a in gw.addresses])
        for l in gw.listeners:
            if not l.ready:
                bad = [c for c in l.conditions
                       if (c.type == "Conflicted" and c.status == "True")
                       or (c.type != "Conflicted" and c.status != "True")]
                gir.not_ready[l.name] = "; ".join(f"{c.type}={c.status} ({c.reason}): {c.message}" for c in bad)
                continue
            lir = _build_listener(gw, l, attached.get((gw.key, l.name), []), actions)
            gir.listeners.append(lir)
            gir.ports.setdefault(l.port, []).append(lir)
        for port, ls in gir.ports.items():
            ls.sort(key=lambda x: listener_host_key(x.hostname))
        ir.gateways[gw.key] = gir
    return ir


def from_objects(objects: list) -> IR:
    """Shortcut: reconcile the resources and build their IR."""
    from .controller import reconcile
    return build(reconcile(objects))


def to_dict(ir: IR) -> dict[str, Any]:
    """The IR as nested plain data (for golden files and debugging)."""
    import dataclasses
    return dataclasses.asdict(ir)
