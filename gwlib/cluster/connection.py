"""``ClusterConnection``: the interface of every mode, answered by a real cluster.

    conn = gwlib.connect("cluster", context="kind-gwlib")   # or GWLIB_MODE=cluster
    conn.apply("data/manifests/talk")      # validate, server-side apply, wait until reconciled
    conn.status().to_frame()               # the status the cluster's controllers wrote
    conn.request(gateway="argocd/argocd-server-gateway", host="argocd.example.com",
                 scheme="https", path="/")  # through the real Gateway (Traefik)
    conn.set_weights("demo/web", {"web-v1": 90, "web-v2": 10})   # a patch of the HTTPRoute
    conn.rollout_status("rollouts-demo/rollouts-demo"); conn.promote(...); conn.abort(...)
    conn.mesh_metrics("demo")              # Linkerd proxies' own metrics, via the API server
    conn.clean()                           # remove everything gwlib created (gwlib cluster clean)

What each method does in a cluster:

* ``apply`` — :func:`gwlib.load` validates every document first (nothing is sent when one
  is invalid); then the safety plan (:mod:`gwlib.cluster.safety`) checks every object
  before any write; a server-side dry run of every object whose namespace exists; then
  server-side apply (field manager ``gwlib``) in dependency order, namespaces first. Every
  object carries ``app.kubernetes.io/managed-by: gwlib``. GatewayClasses with gwlib's own
  ``controllerName`` (``gwlib.dev/gateway-controller``: "whichever data plane is selected")
  are applied with the cluster's controller (Traefik's). With ``backends="echo"`` the
  workloads run the conformance echo server (:mod:`gwlib.cluster.echo`). Then it waits
  (``wait=True``) until the controllers have reconciled what was applied.
* ``status`` — the live GatewayClasses, Gateways and Routes gwlib created, with the status
  the cluster's controllers wrote (a :class:`~gwlib.connection.StatusList`).
* ``wait`` — polls until every object gwlib applied is reconciled (conditions with the
  object's current ``observedGeneration``; ``ready=True``: Accepted, Programmed and
  ResolvedRefs True) and every workload is available; progress lines on stderr.
* ``request``/``send``/``table``/``sample`` — real HTTP(S) through the Gateway: the port of
  the Gateway's listener is reached on 127.0.0.1 through the host port mapping the
  bootstrap script sets up (``ports={80: 8080, 443: 8443}``), or on the Gateway's own
  address (``address=None``: ``status.addresses``, for clusters with a load balancer). The
  answer (design §4.1) is built from the echo server's report; ``backend`` is the Service
  whose endpoints hold the pod that answered. The cluster does not say which route or rule
  matched: ``route`` and ``rule`` are null.
* gRPC requests (``{"grpc": {"service": ..., "method": ...}}``) — one unary call with grpcio
  through the same Gateway port: h2c on an HTTP listener, TLS with ALPN ``h2`` on an HTTPS
  listener; the request's ``host`` is the ``:authority`` and the SNI, its ``headers`` the
  metadata. The echo backends (echo-basic's gRPC server) implement only
  ``gateway_api_conformance.echo_basic.grpcecho.GrpcEcho`` (``Echo``, ``EchoTwo``) — which
  the lab's echo answers the same way — not the lab's own ``gwlib.echo.EchoService``; the
  answer is built from their ``EchoResponse`` (:mod:`gwlib.backends.grpcecho`) and carries
  ``grpc_status``.
* ``split``/``explain`` — what the specification says for the manifests gwlib applied
  (gwlib's controller and reference router), to compare with what the cluster did.
* ``set_weights`` — a JSON Patch of the live HTTPRoute's backendRef weights (each
  ``replace`` guarded by a ``test`` of the backendRef's name).
* ``rollout_status``/``promote``/``abort``/``retry``/``wait_rollout`` — a real Argo Rollout,
  patched as ``kubectl argo rollouts`` does (:mod:`gwlib.cluster.rollouts`).
* ``scrape_proxies``/``mesh_metrics`` — linkerd2-proxy metrics (:mod:`gwlib.cluster.metrics`);
  ``prometheus_query`` — linkerd-viz's Prometheus, through the API server's service proxy.

Not yet in cluster mode (answered with a clear ``error``): TCP, UDP and TLS passthrough
requests — scripts/cluster-up.sh maps only the Gateway's ports 80 and 443 to the host, and
the echo backends run echo-basic's HTTP and gRPC servers only — and mesh requests
(``{"service": ...}``), which need a client inside the mesh.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..backends.client import GrpcReply
from ..connection import (GRPC_RESPONSE_METADATA, TRANSPORT_RESPONSE_HEADERS, Connection, StatusList, _canonical,
                          _echo_received, _error_answer, _joined, _json_body, _merge, _SNIConnection, _weighted_refs)
from ..validation import load
from ..backends import grpcecho
from . import echo, metrics, rollouts, safety
from .api import Api, Resource, describe
from .errors import ClusterError, ClusterTimeout, NotServed, UnsafeObject, warn

GATEWAY_API = "gateway.networking.k8s.io/v1"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute", "UDPRoute")
#: controllers a cluster made by scripts/cluster-up.sh runs: gwlib waits for their status
CONTROLLERS = ("traefik.io/gateway-controller", "linkerd.io/policy-controller")
#: gwlib's own GatewayClass controllerName means "whichever data plane is selected"
GWLIB_CONTROLLER = "gwlib.dev/gateway-controller"
#: Gateway port -> 127.0.0.1 port: the kind port mappings of scripts/cluster-up.sh
DEFAULT_PORTS = {80: 8080, 443: 8443}
#: cluster-scoped kinds gwlib may create
CLUSTER_KINDS = ("Namespace", "GatewayClass", "ClusterAnalysisTemplate")
#: apply order (lower first); kinds not listed go last, in input order
ORDER = {"Namespace": 0, "ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "Service": 2,
         "GatewayClass": 3, "Gateway": 4, "ReferenceGrant": 5, "HTTPRoute": 6, "GRPCRoute": 6,
         "TCPRoute": 6, "TLSRoute": 6, "UDPRoute": 6, "AnalysisTemplate": 7,
         "ClusterAnalysisTemplate": 7, "Deployment": 8, "Rollout": 9}
#: server-set fields an apply body must not carry
SERVER_FIELDS = ("creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink")
#: response headers a proxy or server adds on its own (left out of answers, as in the lab)
_ANSWER_DROP = TRANSPORT_RESPONSE_HEADERS | {"content-type"}
#: response metadata of gRPC itself and the transport's (left out of gRPC answers' ``headers``)
_GRPC_ANSWER_DROP = TRANSPORT_RESPONSE_HEADERS | GRPC_RESPONSE_METADATA
#: request headers that are HTTP/2 transport, not gRPC metadata (never sent as metadata)
GRPC_TRANSPORT_HEADERS = frozenset({"host", "content-type", "content-length", "te", "connection", "keep-alive",
                                    "transfer-encoding", "upgrade", "proxy-connection", "grpc-timeout",
                                    "grpc-encoding", "grpc-accept-encoding"})
#: how grpcio reports an HTTP response without a gRPC status (Traefik's 404, a 503, ...)
_GRPC_HTTP_STATUS = re.compile(r"Received http2 header with status: (\d{3})")
GRPC_TIMEOUT = 15.0


def _key(obj: dict) -> tuple[str, str, str | None, str]:
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace"), meta.get("name", ""))


def _ns_name(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta.get("name", "")


def _split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name


def _clean_body(obj: dict) -> dict:
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    out["metadata"] = meta
    return out


def _strip(obj: dict) -> dict:
    """A live object without managedFields (what ``kubectl get -o yaml`` shows)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def _cond(status: dict | None, ctype: str) -> dict | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ClusterConnection(Connection):
    """Mode ``cluster``: a Kubernetes cluster through the ``kubernetes`` client.

    ``context``: the kube context (default ``GWLIB_CONTEXT``, else the kubeconfig's current
    one); only ``kind-*``, ``k3d-*`` and names in ``GWLIB_ALLOW_CONTEXT`` are accepted, and
    that is decided before anything is loaded or sent. ``kubeconfig``: the file (default
    ``KUBECONFIG`` or ``~/.kube/config``). ``ports``: Gateway port → 127.0.0.1 port
    (default ``GWLIB_CLUSTER_PORTS``, else the bootstrap script's mappings
    ``{80: 8080, 443: 8443}``); ``address=None``
    with ``ports={}`` sends to the Gateway's own address instead. ``backends``: ``"echo"``
    (default) or ``"as-written"``. ``timeout``: seconds ``apply`` waits for the controllers.
    ``progress``: print waiting progress on stderr (or a callable taking one line).
    ``dataplane``: accepted for notebooks written for the lab; the cluster's controller answers.
    ``api_client``: an already configured ``kubernetes.client.ApiClient`` (the context
    check still runs first)."""

    mode = "cluster"

    def __init__(self, context: str | None = None, kubeconfig: str | None = None, *,
                 ports: dict[int, int] | None = None, address: str | None = "127.0.0.1",
                 backends: str = "echo", controllers: Iterable[str] = CONTROLLERS,
                 timeout: float = 120.0, progress: bool | Callable[[str], None] = True,
                 seed: int | None = 0, api_client=None, poll: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep, dataplane: str | None = None) -> None:
        if backends not in ("echo", "as-written"):
            raise ValueError(f"backends must be 'echo' or 'as-written', not {backends!r}")
        # the safety check comes first: nothing is loaded or sent for a refused context
        self.context, self.kubeconfig = safety.resolve_context(context, kubeconfig)
        super().__init__(seed=seed)
        if api_client is None:
            try:
                from kubernetes import config as kconfig
                api_client = kconfig.new_client_from_config(config_file=self.kubeconfig, context=self.context,
                                                            persist_config=False)
            except Exception as exc:  # noqa: BLE001 - bad credentials etc.: one line
                raise ClusterError(f"cannot load context {self.context!r} from {self.kubeconfig}: "
                                   f"{str(exc).splitlines()[0]}") from None
        self.api_client = api_client
        host = getattr(getattr(api_client, "configuration", None), "host", "") or ""
        self.api = Api(api_client, where=f"context {self.context} ({host})" if host else f"context {self.context}")
        self.host_ports = dict(_ports_from_env() if ports is None else ports)
        self.address = address
        self.backends = backends
        self.controllers = tuple(controllers)
        self.timeout = timeout
        self.poll = poll
        self._sleep = sleep
        self._progress = progress
        self._applied: dict[tuple, dict] = {}       # what this connection applied (cluster bodies)
        self._said: set[str] = set()                 # warnings already given
        self._endpoints: dict[str, tuple[float, dict[str, list[str]]]] = {}   # ns -> (time, pod -> services)
        self._lock = threading.RLock()
        if dataplane and dataplane.strip().lower() != "traefik":
            self._warn_once(f"dataplane={dataplane!r} is a lab setting: in cluster mode the cluster's own "
                            "Gateway controller (Traefik, with scripts/cluster-up.sh) answers")

    # -- output ---------------------------------------------------------------------------

    def _progress_line(self, line: str) -> None:
        if callable(self._progress):
            self._progress(line)
        elif self._progress:
            _say(line)

    def _warn_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            warn(message)

    # -- resources ------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        return self.api.resource(api_version, kind)

    def get(self, kind: str, key: str, api_version: str | None = None) -> dict | None:
        """The live object (``"ns/name"`` or ``"name"``), without managedFields; None if absent."""
        api_version = api_version or _default_api_version(kind)
        ns, name = _split_key(key)
        res = self.resource(api_version, kind)
        obj = self.api.get(res, (ns or "default") if res.namespaced else None, name, missing_ok=True)
        return _strip(obj) if obj else None

    # -- apply ----------------------------------------------------------------------------

    def _prepare(self, docs: list[dict]) -> list[dict]:
        """The cluster bodies: gwlib's class mapped to the cluster's controller, echo
        backends, gwlib's label on everything."""
        out = []
        mapped = []
        for d in docs:
            d = json.loads(json.dumps(d))  # a deep copy
            if d.get("kind") == "GatewayClass" and (d.get("spec") or {}).get("controllerName") == GWLIB_CONTROLLER:
                d["spec"]["controllerName"] = self.controllers[0]
                mapped.append(d["metadata"]["name"])
            out.append(d)
        if mapped:
            self._warn_once(f"GatewayClass {', '.join(mapped)}: controllerName {GWLIB_CONTROLLER} "
                            f"(whichever data plane is selected) is {self.controllers[0]} in this cluster")
        if self.backends == "echo":
            out, notes = echo.plan(out)
            if notes:
                self._warn_once("echo backends: these workloads run the conformance echo server instead of "
                                "their images: " + "; ".join(notes))
        return [safety.with_label(_clean_body(d)) for d in out]

    def _plan(self, bodies: list[dict], skip_foreign: bool) -> list[tuple[Resource, dict, bool]]:
        """[(resource, body, namespace exists)] in apply order, after every safety check.
        Raises :class:`UnsafeObject` (nothing written) unless ``skip_foreign``."""
        refused: list[str] = []
        ok: list[tuple[Resource, dict]] = []
        ns_res = self.resource("v1", "Namespace")
        namespaces: dict[str, dict | None] = {}

        def namespace(name: str) -> dict | None:
            if name not in namespaces:
                namespaces[name] = self.api.get(ns_res, None, name, missing_ok=True)
            return namespaces[name]

        declared = {b["metadata"]["name"] for b in bodies if b.get("kind") == "Namespace" and b.get("apiVersion") == "v1"}
        for body in bodies:
            kind, meta = body.get("kind"), body["metadata"]
            what = describe(kind, meta.get("namespace"), meta.get("name"))
            res = self.resource(body.get("apiVersion", ""), kind)
            if res.namespaced:
                ns = meta.get("namespace") or "default"
                meta["namespace"] = ns
                if safety.reserved_namespace(ns):
                    refused.append(f"{what}: gwlib never writes into namespace {ns}")
                    continue
                live_ns = namespace(ns)
                if live_ns is not None and not safety.is_managed(live_ns):
                    refused.append(f"{what}: namespace {ns} was not created by gwlib")
                    continue
            else:
                meta.pop("namespace", None)
                if kind not in CLUSTER_KINDS:
                    refused.append(f"{what}: a cluster-wide {kind} is installation, not gwlib's "
                                   "(scripts/cluster-up.sh installs what the cluster needs)")
                    continue
                if kind == "Namespace" and safety.reserved_namespace(meta["name"]):
                    refused.append(f"{what}: gwlib never writes into namespace {meta['name']}")
                    continue
            if kind == "Namespace" and body.get("apiVersion") == "v1":
                live = namespace(meta["name"])
            else:
                live = self.api.get(res, meta.get("namespace"), meta["name"], missing_ok=True)
            if live is not None and not safety.is_managed(live):
                refused.append(f"{what} exists and was not created by gwlib")
                continue
            ok.append((res, body))
        if refused and not skip_foreign:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise UnsafeObject(f"nothing applied: {refused[0]}{more}"
                               + ("; " + "; ".join(refused[1:]) if len(refused) > 1 else ""))
        if refused:
            self._warn_once("skipped (outside gwlib's reach): " + "; ".join(refused))
        # namespaces the objects need but the manifests do not declare: gwlib creates them
        for res, body in list(ok):
            ns = body["metadata"].get("namespace")
            if res.namespaced and ns and ns not in declared and namespace(ns) is None:
                declared.add(ns)
                ok.append((ns_res, safety.with_label({"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": ns}})))
        ok.sort(key=lambda rb: ORDER.get(rb[1]["kind"], 99))
        return [(res, body, (not res.namespaced) or namespace(body["metadata"]["namespace"]) is not None)
                for res, body in ok]

    def apply(self, *sources: Any, wait: bool = True, timeout: float | None = None,
              dry_run: bool = False, skip_foreign: bool = False) -> list:
        """Validate, check, dry-run, then server-side apply (field manager ``gwlib``).

        Raises :class:`gwlib.InvalidManifest` (nothing sent) when a document is invalid,
        :class:`~gwlib.cluster.UnsafeObject` (nothing written) when an object is outside
        gwlib's reach — unless ``skip_foreign=True``, which skips those objects with a
        warning (e.g. the Argo Rollouts install objects next to a demo's manifests) — and
        :class:`~gwlib.cluster.ClusterError` with the API's message when the API server
        refuses an object (the dry run catches that before any write, for objects whose
        namespace exists). ``dry_run=True`` stops after the server-side dry run. Returns
        the applied objects (typed, as :func:`gwlib.load` gives them)."""
        objects = load(*sources)
        bodies = self._prepare([o.to_dict() for o in objects])
        plan = self._plan(bodies, skip_foreign)
        for res, body, ns_exists in plan:
            if ns_exists:
                self.api.apply(res, body, dry_run=True)
        if dry_run:
            return objects
        for res, body, _ in plan:
            live = self.api.apply(res, body)
            self._applied[_key(body)] = _strip(live) if isinstance(live, dict) else body
        keep = {(_key(b)[1], _key(b)[2], _key(b)[3]) for _, b, _ in plan}
        mine = [o for o in objects if (o.kind, o.namespace if o.NAMESPACED else None, o.name) in keep
                or (o.kind, None, o.name) in keep]
        stored = self.store.apply(mine) if mine else []
        self._changed()
        if wait:
            try:
                self.wait(timeout=self.timeout if timeout is None else timeout)
            except ClusterTimeout as exc:
                warn(str(exc))
        return stored

    def delete(self, *sources: Any, wait: bool = False) -> int:
        """Delete the objects the sources name (only objects gwlib created); returns how
        many existed. Echo Deployments gwlib added for their Services go with them."""
        objects = load(*sources)
        bodies = [safety.with_label(_clean_body(o.to_dict())) for o in objects]
        if self.backends == "echo":
            bodies = echo.plan(bodies)[0]
        gone = 0
        targets = []
        for body in bodies:
            meta = body["metadata"]
            res = self.resource(body.get("apiVersion", ""), body.get("kind", ""))
            ns = (meta.get("namespace") or "default") if res.namespaced else None
            live = self.api.get(res, ns, meta["name"], missing_ok=True)
            if live is None:
                continue
            if not safety.is_managed(live):
                raise UnsafeObject(f"nothing deleted: {describe(res.kind, ns, meta['name'])} "
                                   "was not created by gwlib")
            targets.append((res, ns, meta["name"]))
        for res, ns, name in sorted(targets, key=lambda t: -ORDER.get(t[0].kind, 99)):
            if self.api.delete(res, ns, name):
                gone += 1
            self._applied = {k: v for k, v in self._applied.items() if not (k[1] == res.kind and k[3] == name
                                                                             and (k[2] == ns or not res.namespaced))}
        self.store.delete(objects)
        self._changed()
        if wait:
            self._wait_gone(targets, self.timeout)
        return gone

    def _wait_gone(self, targets: list, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        left = list(targets)
        while left:
            left = [t for t in left if self.api.get(t[0], t[1], t[2], missing_ok=True) is not None]
            if not left:
                return
            if time.monotonic() > deadline:
                raise ClusterTimeout(f"still being deleted after {timeout:.0f} s: "
                                     + ", ".join(describe(r.kind, ns, n) for r, ns, n in left),
                                     [describe(r.kind, ns, n) for r, ns, n in left])
            self._sleep(self.poll)

    def _changed(self) -> None:
        super()._changed()
        self._gateways_cache: dict[str, dict] = {}

    # -- status ---------------------------------------------------------------------------

    def status(self) -> StatusList:
        """The live GatewayClasses, Gateways and Routes gwlib created (this session or an
        earlier one), each the whole object with the status the cluster wrote, in the
        order ``gwlib status`` uses."""
        items = []
        for kind in ("GatewayClass", "Gateway", *ROUTE_KINDS):
            try:
                res = self.resource(GATEWAY_API, kind)
            except NotServed:
                continue  # a kind this cluster's CRDs do not serve
            items.extend(sorted(self.api.list(res, label_selector=safety.SELECTOR), key=_ns_name))
        return StatusList(_strip(i) for i in items)

    def _pending(self, ready: bool) -> list[str]:
        """What is not reconciled (or not ready) yet, one phrase each."""
        pending: list[str] = []
        classes: dict[str, str] = {}
        gateways: dict[str, dict] = {}
        mine = {(k[1], k[2], k[3]) for k in self._applied}
        for item in self.status():
            kind, meta, st = item["kind"], item["metadata"], item.get("status") or {}
            if kind == "GatewayClass":
                classes[meta["name"]] = (item.get("spec") or {}).get("controllerName", "")
            elif kind == "Gateway":
                gateways[_ns_name(item)] = item
            if (kind, meta.get("namespace"), meta.get("name")) not in mine:
                continue  # only what this connection applied (older objects do not hold it up)
            gen = meta.get("generation", 1)
            what = f"{kind} {_ns_name(item)}"
            if kind == "GatewayClass":
                if classes[meta["name"]] not in self.controllers:
                    continue
                pending += _check_conditions(what, st, gen, ("Accepted",), ready)
            elif kind == "Gateway":
                ctrl = self._controller_of((item.get("spec") or {}).get("gatewayClassName"), classes)
                if ctrl not in self.controllers:
                    continue
                pending += _check_conditions(what, st, gen, ("Accepted", "Programmed"), ready)
            else:
                ns = meta.get("namespace")
                for ref in (item.get("spec") or {}).get("parentRefs") or []:
                    pkind = ref.get("kind", "Gateway")
                    pns = ref.get("namespace", ns)
                    if pkind == "Gateway":
                        gw = gateways.get(f"{pns}/{ref.get('name')}") or self._gateway(f"{pns}/{ref.get('name')}")
                        ctrl = self._controller_of(((gw or {}).get("spec") or {}).get("gatewayClassName"), classes)
                    elif pkind == "Service":
                        ctrl = "linkerd.io/policy-controller"
                    else:
                        ctrl = None
                    if ctrl not in self.controllers:
                        continue
                    parent = next((p for p in st.get("parents") or []
                                   if _same_parent(p.get("parentRef") or {}, ref, ns)
                                   and p.get("controllerName") == ctrl), None)
                    where = f"{what} (parent {pkind} {pns}/{ref.get('name')}"
                    where += f" {ref['sectionName']})" if ref.get("sectionName") else ")"
                    if parent is None:
                        pending.append(f"{where}: no status from {ctrl} yet")
                        continue
                    pending += _check_conditions(where, parent, gen, ("Accepted", "ResolvedRefs"), ready)
        pending += self._workloads_pending()
        return pending

    def _controller_of(self, class_name: str | None, classes: dict[str, str]) -> str | None:
        """The controllerName of a GatewayClass (gwlib's, else read from the cluster)."""
        if not class_name:
            return None
        if class_name not in classes:
            live = self.get("GatewayClass", class_name, GATEWAY_API)
            classes[class_name] = ((live or {}).get("spec") or {}).get("controllerName", "")
        return classes[class_name]

    def _workloads_pending(self) -> list[str]:
        out = []
        for (api_version, kind, ns, name) in list(self._applied):
            if kind not in ("Deployment", "Rollout"):
                continue
            live = self.get(kind, f"{ns}/{name}", api_version)
            if live is None:
                out.append(f"{kind} {ns}/{name}: gone")
                continue
            st, spec, gen = live.get("status") or {}, live.get("spec") or {}, live["metadata"].get("generation", 1)
            want = spec.get("replicas", 1)
            if kind == "Deployment":
                if st.get("observedGeneration", 0) < gen:
                    out.append(f"{kind} {ns}/{name}: not observed yet")
                elif (st.get("updatedReplicas") or 0) < want or (st.get("availableReplicas") or 0) < want:
                    out.append(f"{kind} {ns}/{name}: {st.get('availableReplicas') or 0}/{want} available")
            else:
                phase = st.get("phase")
                if str(st.get("observedGeneration")) != str(gen) or phase not in ("Healthy", "Paused", "Degraded"):
                    out.append(f"{kind} {ns}/{name}: {phase or 'not observed yet'}"
                               + (f" ({st['message']})" if st.get("message") else ""))
        return out

    def wait(self, timeout: float | None = None, ready: bool = False) -> StatusList:
        """Wait until the controllers have reconciled everything this connection applied (conditions
        at the current generation; ``ready=True``: Accepted, Programmed and ResolvedRefs
        True) and every workload is available. Progress goes to stderr; raises
        :class:`~gwlib.cluster.ClusterTimeout` listing what is missing after ``timeout``."""
        timeout = self.timeout if timeout is None else timeout
        start = time.monotonic()
        last: list[str] | None = None
        while True:
            pending = self._pending(ready)
            if not pending:
                if last:
                    self._progress_line(f"gwlib: reconciled after {time.monotonic() - start:.1f} s")
                return self.status()
            if pending != last:
                self._progress_line(f"gwlib: waiting for {len(pending)}: " + "; ".join(pending))
                last = pending
            if time.monotonic() - start >= timeout:
                raise ClusterTimeout(f"not reconciled after {timeout:.0f} s: " + "; ".join(pending), pending)
            self._sleep(self.poll)

    # -- traffic --------------------------------------------------------------------------

    def _gateway(self, key: str) -> dict | None:
        cache = getattr(self, "_gateways_cache", None)
        if cache is None:
            cache = self._gateways_cache = {}
        if key not in cache:
            live = self.get("Gateway", key, GATEWAY_API)
            if live is None:
                return None
            cache[key] = live
        return cache[key]

    def _target(self, req: dict) -> tuple[str, int, str, str, str] | str:
        """(gateway key, listener port, scheme, connect address, host header) or an error."""
        gw_key = req.get("gateway")
        if not isinstance(gw_key, str) or not gw_key:
            return 'the request has no "gateway" ("namespace/name")'
        if "/" not in gw_key:
            gw_key = f"default/{gw_key}"
        gw = self._gateway(gw_key)
        if gw is None:
            return f"Gateway {gw_key} not found in the cluster"
        listeners = (gw.get("spec") or {}).get("listeners") or []
        scheme = (req.get("scheme") or "").lower() or None
        port = req.get("port")
        if port is None:
            want = ("HTTPS",) if scheme == "https" else ("HTTP",) if scheme in (None, "http") else ()
            first = next((l for l in listeners if l.get("protocol") in want), None)
            if first is None and scheme is None:
                first = next((l for l in listeners if l.get("protocol") == "HTTPS"), None)
            if first is None:
                return f"Gateway {gw_key} has no {'/'.join(want) or scheme} listener"
            port = first["port"]
        try:
            port = int(port)
        except (TypeError, ValueError):
            return f'"port" must be an integer, not {port!r}'
        protos = {l.get("protocol") for l in listeners if l.get("port") == port}
        if not protos:
            return f"connection refused: Gateway {gw_key} has no listener on port {port}"
        if scheme is None:
            scheme = "http" if "HTTP" in protos else "https" if "HTTPS" in protos else (next(iter(protos)) or "").lower()
        addresses = (gw.get("status") or {}).get("addresses") or []
        gw_address = addresses[0].get("value") if addresses else None
        if self.address is not None:
            local = self.host_ports.get(port)
            if local is None:
                return (f"Gateway {gw_key} port {port} has no host port mapping (ports={self.host_ports}); "
                        "scripts/cluster-up.sh maps 80 and 443")
            connect = f"{self.address}:{local}"
        else:
            if not gw_address:
                return f"Gateway {gw_key} has no address in its status yet"
            connect = f"{gw_address}:{port}"
        host = req.get("host")
        if host is None:
            host = gw_address or (self.address or "127.0.0.1")
        return gw_key, port, scheme, connect, host

    def request(self, request: dict | None = None, **fields: Any) -> dict:
        """One request (HTTP, HTTPS or gRPC) through the real Gateway; the answer in the
        design's format (gRPC answers add ``grpc_status``)."""
        req = _merge(request, fields)
        if "service" in req and "gateway" not in req:
            return _error_answer("mesh requests need a client inside the mesh: not supported in cluster mode yet")
        target = self._target(req)
        if isinstance(target, str):
            return _error_answer(target)
        _gw, _port, scheme, connect, host = target
        if scheme not in ("http", "https"):
            return _error_answer(f"{scheme.upper()} requests are not supported in cluster mode yet")
        if req.get("grpc") is not None:
            return self._grpc(req, connect, host, scheme)
        status, pairs, raw, err = self._http(req, connect, host, scheme)
        if err:
            return _error_answer(err)
        return self._answer(req, status, pairs, raw)

    def _trusted_pems(self) -> list[str]:
        """The certificates (PEM) of the TLS Secrets gwlib applied that load as trust anchors."""
        out = []
        for obj in self.store.objects():
            if obj.kind != "Secret":
                continue
            crt = (obj.to_dict().get("data") or {}).get("tls.crt")
            if not crt:
                continue
            try:
                pem = base64.b64decode(crt).decode("ascii")
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
            except (ssl.SSLError, ValueError):
                continue
            out.append(pem)
        return out

    def _ssl_context(self) -> ssl.SSLContext:
        """Trust the certificates of the TLS Secrets gwlib applied; without any, do not
        verify (a local cluster's self-signed certificates)."""
        pems = self._trusted_pems()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if pems:
            for pem in pems:
                ctx.load_verify_locations(cadata=pem)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _http(self, req: dict, connect: str, host: str, scheme: str):
        address, _, port = connect.rpartition(":")
        method = req.get("method") or "GET"
        path = req.get("path") or "/"
        headers = dict(req.get("headers") or {})
        sni = _sni(host)
        try:
            if scheme == "https":
                conn = _SNIConnection(address, int(port), sni, context=self._ssl_context(), timeout=15)
            else:
                conn = http.client.HTTPConnection(address, int(port), timeout=15)
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", host)
                for k, v in headers.items():
                    conn.putheader(k, v)
                conn.endheaders()
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read(), None
            finally:
                conn.close()
        except ssl.SSLError as exc:
            return None, [], b"", f"TLS handshake failed: {exc.reason or exc}"
        except (OSError, http.client.HTTPException) as exc:
            return None, [], b"", f"connection failed: {exc} ({connect})"

    def _answer(self, req: dict, status: int, pairs: list[tuple[str, str]], raw: bytes) -> dict:
        body = _json_body(raw, next((v for k, v in pairs if k.lower() == "content-type"), None))
        backend = received = None
        drop = _ANSWER_DROP
        if isinstance(body, dict) and "namespace" in body and "pod" in body and "method" in body:
            backend = self._backend(req, body)
            received = _echo_received(body)
            drop = _ANSWER_DROP | {"x-content-type-options"}   # what the echo adds to every answer
        out = _joined(pairs, drop=drop)
        return {"status": status, "backend": backend, "request": received, "headers": out,
                "location": out.get("Location"), "mirrored_to": [], "route": None, "rule": None}

    # -- gRPC -------------------------------------------------------------------------------

    def _grpc(self, req: dict, connect: str, host: str, scheme: str) -> dict:
        """One unary gRPC call through the Gateway (h2c, or TLS with ALPN h2 for ``https``)."""
        g = req["grpc"]
        if not isinstance(g, dict):
            return _error_answer('"grpc" must be {"service": "pkg.Service", "method": "Method"}')
        service, method = str(g.get("service") or ""), str(g.get("method") or "")
        metadata = _grpc_metadata(req.get("headers") or {})
        if isinstance(metadata, str):
            return _error_answer(metadata)
        address, _, port = connect.rpartition(":")
        sni = _sni(host)
        roots = None
        if scheme == "https":
            probe = self._tls_probe(address.strip("[]"), int(port), sni, connect)
            if isinstance(probe, str):
                return _error_answer(probe)
            roots = probe
        else:
            try:  # a refused connection is one line, as for HTTP
                socket.create_connection((address.strip("[]"), int(port)), timeout=GRPC_TIMEOUT).close()
            except OSError as exc:
                return _error_answer(f"connection failed: {exc} ({connect})")
        try:
            reply = _grpc_call(connect, f"/{service}/{method}", metadata, host, sni, roots)
        except ValueError as exc:  # metadata grpcio refuses
            return _error_answer(f"gRPC metadata refused: {exc}")
        if reply.code == 14 and reply.details.startswith("failed to connect to all addresses"):
            # grpcio's own words for a channel that never connected (no reply from anyone)
            line = reply.details.splitlines()[0]
            if scheme == "https":  # TCP and the TLS probe got through: grpcio's TLS check did not
                return _error_answer(f"TLS handshake failed: {line} (gRPC checks that the certificate names {sni})")
            return _error_answer(f"connection failed: {line} ({connect})")
        ans = self._grpc_answer(req, reply)
        if reply.code == 12 and ans["status"] == 200 and service != grpcecho.GRPC_ECHO_SERVICE \
                and self.backends == "echo":
            self._warn_once(f"gRPC service {service or '(none)'}: the echo backends (echo-basic) implement only "
                            f"{grpcecho.GRPC_ECHO_SERVICE} (methods {', '.join(grpcecho.GRPC_ECHO_METHODS)}); "
                            "any other service answers UNIMPLEMENTED (12) even when a GRPCRoute matched")
        return ans

    def _tls_probe(self, address: str, port: int, sni: str, connect: str) -> bytes | str:
        """Check the TLS handshake as the HTTP requests do (the applied Secrets' certificates,
        the SNI, ALPN h2); returns the PEM roots for grpcio — the applied Secrets'
        certificates, else the certificate the Gateway presented — or an error line."""
        ctx = self._ssl_context()
        ctx.set_alpn_protocols(["h2"])
        try:
            with socket.create_connection((address, port), timeout=GRPC_TIMEOUT) as sock, \
                    ctx.wrap_socket(sock, server_hostname=sni) as tls:
                alpn = tls.selected_alpn_protocol()
                der = tls.getpeercert(binary_form=True)
        except ssl.SSLError as exc:
            return f"TLS handshake failed: {exc.reason or exc}"
        except OSError as exc:
            return f"connection failed: {exc} ({connect})"
        if alpn != "h2":
            return f"the Gateway did not negotiate HTTP/2 (ALPN h2) for {sni} ({connect}): gRPC needs it"
        pems = self._trusted_pems()
        if pems:
            return "".join(pems).encode("ascii")
        if not der:
            return f"TLS handshake failed: no certificate from {connect}"
        return ssl.DER_cert_to_PEM_cert(der).encode("ascii")

    def _grpc_answer(self, req: dict, reply: GrpcReply) -> dict:
        m = _GRPC_HTTP_STATUS.search(reply.details) if reply.code else None
        headers = _joined(reply.initial_metadata.items(), drop=_GRPC_ANSWER_DROP)
        ans: dict[str, Any] = {"status": int(m.group(1)) if m else 200, "backend": None, "request": None,
                               "headers": headers, "location": None, "mirrored_to": [], "route": None,
                               "rule": None, "grpc_status": reply.code}
        if reply.code != 0 or reply.body is None:
            return ans
        try:
            assertions = grpcecho.decode(reply.body).get("assertions")
        except ValueError:
            assertions = None
        if not assertions:
            self._warn_once("a gRPC reply was not the conformance echo's EchoResponse: no backend or request in the answer")
            return ans
        ctx = assertions.get("context") or {}
        if ctx.get("namespace") or ctx.get("pod"):
            ans["backend"] = self._backend(req, {"namespace": ctx.get("namespace"), "pod": ctx.get("pod"),
                                                 "service": ctx.get("service_name")})
        ans["request"] = grpcecho.received(assertions, _canonical)
        return ans

    # -- which Service answered -------------------------------------------------------------

    def _pod_services(self, namespace: str, refresh: bool = False) -> dict[str, list[str]]:
        """pod name -> Services whose EndpointSlices list it (cached for 2 s)."""
        with self._lock:
            hit = self._endpoints.get(namespace)
            if hit and not refresh and time.monotonic() - hit[0] < 2.0:
                return hit[1]
            data = self.api.request("GET", f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
                                    response_type="V1EndpointSliceList",
                                    doing=f"list endpointslices in {namespace}")
            pods: dict[str, list[str]] = {}
            for sl in data.items or []:
                svc = ((sl.metadata.labels or {}) if sl.metadata else {}).get("kubernetes.io/service-name")
                if not svc:
                    continue
                for ep in sl.endpoints or []:
                    ref = ep.target_ref
                    if ref is not None and ref.kind == "Pod" and ref.name:
                        lst = pods.setdefault(ref.name, [])
                        if svc not in lst:
                            lst.append(svc)
            self._endpoints[namespace] = (time.monotonic(), pods)
            return pods

    def _backend(self, req: dict, body: dict) -> dict:
        ns, pod = body.get("namespace") or "", body.get("pod") or ""
        env_service = body.get("service") or None
        candidates: list[str] = []
        try:
            split = self.router.split(req)
            candidates = [k.split("/", 1)[1] for k, p in split.items() if "/" in k and k.split("/", 1)[0] == ns and p > 0]
        except Exception:  # noqa: BLE001 - the model is only a tie-breaker
            candidates = []
        services: list[str] = []
        if ns and pod:
            try:
                services = self._pod_services(ns).get(pod) or self._pod_services(ns, refresh=True).get(pod) or []
            except ClusterError:
                services = []
        if len(services) > 1:
            narrowed = [s for s in services if s in candidates] or \
                       ([env_service] if env_service in services else [])
            services = narrowed or sorted(services)
        name = services[0] if services else (env_service or (candidates[0] if len(candidates) == 1 else None))
        return {"namespace": ns, "name": name, "port": self._service_port(ns, name)}

    def _service_port(self, namespace: str, name: str | None) -> int | None:
        if not name:
            return None
        for obj in self.store.objects():  # the port the routes name for that Service
            if obj.kind not in ROUTE_KINDS:
                continue
            for rule in (obj.to_dict().get("spec") or {}).get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    if ref.get("name") == name and (ref.get("namespace") or obj.namespace) == namespace \
                            and ref.get("kind", "Service") == "Service" and ref.get("port"):
                        return int(ref["port"])
        svc = next((o for o in self.store.objects() if o.kind == "Service" and o.namespace == namespace
                    and o.name == name), None)
        spec = (svc.to_dict() if svc else (self.get("Service", f"{namespace}/{name}", "v1") or {})).get("spec") or {}
        ports = spec.get("ports") or []
        return int(ports[0]["port"]) if len(ports) == 1 else None

    # -- changes --------------------------------------------------------------------------

    def set_weights(self, route: str, weights: dict[str, int], rule: int = 0,
                    kind: str = "HTTPRoute", wait: bool = True, timeout: float | None = None) -> dict:
        """Set backendRef weights of one rule of a live route by backend name, as a canary
        controller does: a JSON Patch, each ``replace`` guarded by a ``test`` of the
        backendRef's name. Returns the patched route (live, without managedFields).

        ``wait`` (default): return once the Gateway controllers have reconciled the change —
        every parent status they wrote for the route carries the patched generation
        (:class:`~gwlib.cluster.ClusterTimeout` after ``timeout``). Traefik then applies its
        new configuration within its providers' throttle (scripts/cluster-up.sh sets 100 ms),
        so requests sent right after see the new weights, as they do in the lab."""
        res = self.resource(GATEWAY_API, kind)
        ns, name = _split_key(route)
        ns = ns or "default"
        live = self.api.get(res, ns, name, missing_ok=True)
        if live is None:
            raise ClusterError(f"{kind} {ns}/{name} not found in the cluster")
        if not safety.is_managed(live):
            raise UnsafeObject(f"{kind} {ns}/{name} was not created by gwlib: not changing it")
        refs = _weighted_refs(live, kind, f"{ns}/{name}", rule, weights)
        ops: list[dict] = []
        for j, ref in enumerate(refs):
            if ref.get("name") in weights:
                base = f"/spec/rules/{rule}/backendRefs/{j}"
                ops.append({"op": "test", "path": f"{base}/name", "value": ref["name"]})
                ops.append({"op": "replace" if "weight" in ref else "add", "path": f"{base}/weight",
                            "value": int(weights[ref["name"]])})
        patched = self.api.patch(res, ns, name, ops, patch_type="json",
                                 doing=f"set weights of {kind} {ns}/{name}")
        try:  # keep gwlib's model (split, explain) in step with the cluster
            super().set_weights(f"{ns}/{name}", weights, rule=rule, kind=kind)
        except (KeyError, ValueError):
            pass
        if wait:
            patched = self._wait_route_observed(res, kind, ns, name, patched, timeout)
        return _strip(patched)

    def _wait_route_observed(self, res: Resource, kind: str, ns: str, name: str, route: dict,
                             timeout: float | None) -> dict:
        """Poll a route until every parent status of a controller gwlib follows has all its
        conditions at the route's current generation."""
        gen = (route.get("metadata") or {}).get("generation", 1)
        timeout = self.timeout if timeout is None else timeout
        start = time.monotonic()
        while True:
            parents = [p for p in ((route.get("status") or {}).get("parents") or [])
                       if p.get("controllerName") in self.controllers]
            stale = [p for p in parents
                     if any(c.get("observedGeneration") is not None and c["observedGeneration"] < gen
                            for c in p.get("conditions") or [])]
            if parents and not stale:
                return route
            if time.monotonic() - start >= timeout:
                what = "no status from " + ", ".join(self.controllers) if not parents else \
                    f"conditions not observed at generation {gen}"
                raise ClusterTimeout(f"{kind} {ns}/{name}: new weights not reconciled after {timeout:.0f} s "
                                     f"({what})", [f"{kind} {ns}/{name}"])
            self._sleep(min(self.poll, 0.2))
            route = self.api.get(res, ns, name, missing_ok=True)
            if route is None:
                raise ClusterError(f"{kind} {ns}/{name} was deleted while its weights were being set")

    # -- Argo Rollouts --------------------------------------------------------------------

    def _rollout(self, name: str) -> tuple[Resource, str, str, dict]:
        res = self.resource(rollouts.ROLLOUT_API, "Rollout")
        ns, nm = _split_key(name)
        ns = ns or "default"
        live = self.api.get(res, ns, nm, missing_ok=True)
        if live is None:
            raise ClusterError(f"Rollout {ns}/{nm} not found in the cluster")
        return res, ns, nm, live

    def rollout_status(self, name: str) -> dict:
        """The live state of an Argo Rollout (``"ns/name"``): phase, step, weights, hashes,
        the current analysis (see :func:`gwlib.cluster.rollouts.summary`)."""
        return rollouts.summary(self._rollout(name)[3])

    def _status_patch(self, res: Resource, ns: str, name: str, patch: dict, what: str) -> dict:
        try:
            return self.api.patch(res, ns, name, patch, patch_type="merge", subresource="status",
                                  doing=f"{what} Rollout {ns}/{name}")
        except ClusterError as exc:
            if exc.status != 404:
                raise
            return self.api.patch(res, ns, name, patch, patch_type="merge", doing=f"{what} Rollout {ns}/{name}")

    def promote(self, name: str, full: bool = False) -> dict:
        """``kubectl argo rollouts promote [--full]``; returns the new status summary."""
        res, ns, nm, live = self._rollout(name)
        self._check_managed(live, "Rollout", ns, nm)
        spec_patch, status_patch, unified = rollouts.promote_patches(live, full=full)
        ro = live
        if status_patch is not None:
            try:
                ro = self.api.patch(res, ns, nm, status_patch, patch_type="merge", subresource="status",
                                    doing=f"promote Rollout {ns}/{nm}")
            except ClusterError as exc:
                if exc.status != 404:
                    raise
                spec_patch = unified
        if spec_patch is not None:
            ro = self.api.patch(res, ns, nm, spec_patch, patch_type="merge", doing=f"promote Rollout {ns}/{nm}")
        return rollouts.summary(ro)

    def abort(self, name: str) -> dict:
        """``kubectl argo rollouts abort``: traffic back to stable; returns the status summary."""
        res, ns, nm, live = self._rollout(name)
        self._check_managed(live, "Rollout", ns, nm)
        return rollouts.summary(self._status_patch(res, ns, nm, rollouts.ABORT, "abort"))

    def retry(self, name: str) -> dict:
        """``kubectl argo rollouts retry rollout``: start an aborted update again."""
        res, ns, nm, live = self._rollout(name)
        self._check_managed(live, "Rollout", ns, nm)
        return rollouts.summary(self._status_patch(res, ns, nm, rollouts.RETRY, "retry"))

    def wait_rollout(self, name: str, phases: Iterable[str] = ("Healthy", "Paused", "Degraded"),
                     timeout: float | None = None) -> dict:
        """Poll until the Rollout's phase is one of ``phases`` (at its current generation)."""
        timeout = self.timeout if timeout is None else timeout
        phases = tuple(phases)
        start = time.monotonic()
        last = None
        while True:
            s = self.rollout_status(name)
            if s["observed"] and s["phase"] in phases:
                return s
            line = f"gwlib: Rollout {s['rollout']}: {s['phase']} step {s['step']}/{s['steps']}" + \
                   (f" ({s['message']})" if s["message"] else "")
            if line != last:
                self._progress_line(line)
                last = line
            if time.monotonic() - start >= timeout:
                raise ClusterTimeout(f"Rollout {s['rollout']} is {s['phase']} after {timeout:.0f} s, "
                                     f"not {' or '.join(phases)}", [line])
            self._sleep(self.poll)

    @staticmethod
    def _check_managed(live: dict, kind: str, ns: str, name: str) -> None:
        if not safety.is_managed(live):
            raise UnsafeObject(f"{kind} {ns}/{name} was not created by gwlib: not changing it")

    # -- Linkerd metrics ------------------------------------------------------------------

    def scrape_proxies(self, namespace: str, selector: str | None = None) -> metrics.Scrape:
        """Read every meshed pod's linkerd2-proxy metrics in ``namespace`` (pods matching
        the label ``selector``) through the API server's pod proxy (admin port 4191)."""
        query = [("labelSelector", selector)] if selector else []
        pods = self.api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query=query,
                                response_type="V1PodList", doing=f"list pods in {namespace}")
        scrape = metrics.Scrape()
        for pod in pods.items or []:
            pod_dict = self.api_client.sanitize_for_serialization(pod)
            if not metrics.is_meshed(pod_dict) or (pod.status and pod.status.phase != "Running"):
                continue
            name = pod.metadata.name
            try:
                text = self.api.pod_proxy(namespace, name, metrics.ADMIN_PORT, "metrics")
            except ClusterError as exc:
                scrape.errors.append(str(exc))
                continue
            scrape.samples.extend(metrics.parse(text, metrics.target_labels(namespace, name, pod.metadata.labels)))
        scrape.time = time.time()
        return scrape

    def mesh_metrics(self, namespace: str | None = None, since: metrics.Scrape | None = None,
                     selector: str | None = None):
        """Golden metrics per workload (a pandas DataFrame: requests, success rate, p50/p99
        latency in ms) from the proxies' inbound counters — since an earlier
        :meth:`scrape_proxies` when given. ``namespace`` None: every namespace gwlib created."""
        if namespace is not None:
            return self.scrape_proxies(namespace, selector).golden(since=since)
        scrape = metrics.Scrape()
        ns_res = self.resource("v1", "Namespace")
        for ns in sorted(n["metadata"]["name"] for n in self.api.list(ns_res, label_selector=safety.SELECTOR)):
            part = self.scrape_proxies(ns, selector)
            scrape.samples += part.samples
            scrape.errors += part.errors
        return scrape.golden(since=since)

    def prometheus_query(self, query: str, at: float | None = None, namespace: str = "linkerd-viz",
                         service: str = "prometheus", port: int = 9090) -> list[dict]:
        """An instant PromQL query to the cluster's Prometheus (linkerd-viz's, the one the
        AnalysisTemplates name) through the API server's service proxy: the ``result`` list of
        Prometheus' HTTP API (``[{"metric": {...}, "value": [t, "v"]}]`` for a vector)."""
        params: list[tuple[str, Any]] = [("query", query)]
        if at is not None:
            params.append(("time", f"{at:.3f}"))
        text = self.api.service_proxy(namespace, service, port, "api/v1/query", query=params)
        try:
            data = json.loads(text)
        except ValueError:
            raise ClusterError(f"Prometheus {namespace}/{service}: not a JSON answer: {text[:120]!r}") from None
        if data.get("status") != "success":
            raise ClusterError(f"Prometheus {namespace}/{service}: {data.get('errorType', 'error')}: "
                               f"{data.get('error', text[:200])}")
        result = (data.get("data") or {}).get("result")
        return result if isinstance(result, list) else [{"value": result}]

    # -- cleaning up ----------------------------------------------------------------------

    def managed_objects(self) -> list[dict]:
        """Everything ``clean`` removes: gwlib's Namespaces (with what is in them) and the
        other objects with gwlib's label — cluster-scoped ones (GatewayClass,
        ClusterAnalysisTemplate) and any labelled object of the kinds gwlib applies that
        lives outside gwlib's namespaces. Each: {kind, apiVersion, namespace, name}."""
        out: list[dict] = []
        ns_res = self.resource("v1", "Namespace")
        mine = sorted(n["metadata"]["name"] for n in self.api.list(ns_res, label_selector=safety.SELECTOR))
        kinds = [("v1", "Service"), ("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "ServiceAccount"),
                 ("apps/v1", "Deployment"), *((GATEWAY_API, k) for k in ("Gateway", "ReferenceGrant", *ROUTE_KINDS)),
                 (rollouts.ROLLOUT_API, "Rollout"), (rollouts.ROLLOUT_API, "AnalysisTemplate")]
        kinds += [(k[0], k[1]) for k in self._applied if (k[0], k[1]) not in kinds and k[1] not in CLUSTER_KINDS]
        for api_version, kind in kinds:
            if not self.api.served(api_version, kind):
                continue
            for item in self.api.list(self.resource(api_version, kind), label_selector=safety.SELECTOR):
                ns = item["metadata"].get("namespace")
                if ns and ns not in mine:
                    out.append({"apiVersion": api_version, "kind": kind, "namespace": ns,
                                "name": item["metadata"]["name"]})
        out += [{"apiVersion": "v1", "kind": "Namespace", "namespace": None, "name": n} for n in mine]
        for api_version, kind in ((GATEWAY_API, "GatewayClass"), (rollouts.ROLLOUT_API, "ClusterAnalysisTemplate")):
            if not self.api.served(api_version, kind):
                continue
            for item in sorted(self.api.list(self.resource(api_version, kind), label_selector=safety.SELECTOR),
                               key=_ns_name):
                out.append({"apiVersion": api_version, "kind": kind, "namespace": None,
                            "name": item["metadata"]["name"]})
        return out

    def clean(self, dry_run: bool = False, wait: bool = False, timeout: float | None = None) -> list[dict]:
        """Delete exactly what gwlib created (:meth:`managed_objects`); returns that list."""
        targets = self.managed_objects()
        if dry_run:
            return targets
        done = []
        for t in targets:
            res = self.resource(t["apiVersion"], t["kind"])
            if self.api.delete(res, t["namespace"], t["name"]):
                done.append((res, t["namespace"], t["name"]))
        self._applied.clear()
        self.store = type(self.store)()
        self._changed()
        if wait:
            self._wait_gone(done, self.timeout if timeout is None else timeout)
        return targets

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the API client's connections (the cluster keeps what was applied)."""
        try:
            self.api_client.close()
        except Exception:  # noqa: BLE001 - closing must not fail
            pass

    def __repr__(self) -> str:
        return f"<gwlib cluster connection: context {self.context}, {len(self._applied)} objects applied>"


def _sni(host: str) -> str:
    """The server name of a Host (``grpc.example.com:8443`` -> ``grpc.example.com``)."""
    return host.rsplit(":", 1)[0] if not host.startswith("[") else host


def _grpc_metadata(headers: dict) -> list[tuple[str, str]] | str:
    """The request's headers as gRPC metadata (names lower-cased, as HTTP/2 requires;
    transport headers left out), or an error line."""
    out = []
    for k, v in headers.items():
        name = str(k).strip().lower()
        if not name or name.startswith(":") or name in GRPC_TRANSPORT_HEADERS:
            continue
        if name.endswith("-bin"):
            return f"header {k}: binary (-bin) gRPC metadata is not supported in requests"
        value = str(v)
        if any(not 0x20 <= ord(c) <= 0x7E for c in value):
            return f"header {k}: a gRPC metadata value must be printable ASCII"
        out.append((name, value))
    return out


def _grpc_module():
    # as gwlib.backends.client does: grpcio's fork handlers can abort the processes gwlib
    # forks (echo servers, proxies) while a channel exists; turn them off before import
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    import grpc
    return grpc


def _grpc_call(target: str, path: str, metadata: list[tuple[str, str]], authority: str, sni: str,
               roots: bytes | None, timeout: float = GRPC_TIMEOUT) -> GrpcReply:
    """One unary call with an empty request message (echo-basic's ``EchoRequest {}``) on a
    channel of its own (closed after the call): h2c when ``roots`` is None, else TLS
    trusting ``roots`` with ``sni`` as the server name. The reply body is the raw message;
    RPC errors are returned (``code`` != 0), never raised."""
    grpc = _grpc_module()
    options = [("grpc.default_authority", authority), ("grpc.enable_retries", 0)]
    if roots is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        options.append(("grpc.ssl_target_name_override", sni))
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots), options=options)
    try:
        call = channel.unary_unary(path)  # no serializers: bytes in, bytes out
        try:
            raw, info = call.with_call(b"", metadata=metadata or None, timeout=timeout)
        except grpc.RpcError as exc:
            return GrpcReply(exc.code().value[0], exc.details() or "", None,  # type: ignore[attr-defined]
                             _md(exc.initial_metadata()), _md(exc.trailing_metadata()))  # type: ignore[attr-defined]
        return GrpcReply(info.code().value[0], info.details() or "", raw,
                         _md(info.initial_metadata()), _md(info.trailing_metadata()))
    finally:
        channel.close()


def _md(md: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in md or ():
        k, v = item[0], item[1]
        v = v.decode("latin-1") if isinstance(v, bytes) else str(v)
        out[k] = f"{out[k]},{v}" if k in out else v
    return out


def _ports_from_env(env: dict | None = None) -> dict[int, int]:
    """``GWLIB_CLUSTER_PORTS=80=8080,443=8443`` (what cluster-up.sh prints for other host
    ports), else :data:`DEFAULT_PORTS`."""
    raw = (env if env is not None else os.environ).get("GWLIB_CLUSTER_PORTS", "").strip()
    if not raw:
        return dict(DEFAULT_PORTS)
    out = {}
    for part in raw.replace(" ", ",").split(","):
        if not part:
            continue
        gw, sep, local = part.partition("=")
        if not sep or not gw.isdigit() or not local.isdigit():
            raise ValueError(f"GWLIB_CLUSTER_PORTS: {part!r} is not GATEWAY_PORT=LOCAL_PORT (e.g. 80=8080,443=8443)")
        out[int(gw)] = int(local)
    return out


def _check_conditions(what: str, status: dict, gen: int, types: tuple[str, ...], ready: bool) -> list[str]:
    out = []
    for t in types:
        c = _cond(status, t)
        if c is None:
            out.append(f"{what}: no {t} condition yet")
        elif c.get("observedGeneration") is not None and c["observedGeneration"] < gen:
            out.append(f"{what}: {t} not observed at generation {gen} yet")
        elif c.get("status") == "Unknown":
            out.append(f"{what}: {t} Unknown ({c.get('reason', '')})")
        elif ready and c.get("status") != "True":
            out.append(f"{what}: {t} {c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})")
    return out


def _same_parent(status_ref: dict, ref: dict, route_ns: str | None) -> bool:
    return (status_ref.get("name") == ref.get("name")
            and status_ref.get("namespace", route_ns) == ref.get("namespace", route_ns)
            and status_ref.get("kind", "Gateway") == ref.get("kind", "Gateway")
            and status_ref.get("sectionName") == ref.get("sectionName")
            and status_ref.get("port") == ref.get("port"))


def _default_api_version(kind: str) -> str:
    if kind in ("GatewayClass", "Gateway", "ReferenceGrant", *ROUTE_KINDS):
        return GATEWAY_API
    if kind in ("Deployment", "ReplicaSet"):
        return "apps/v1"
    if kind in ("Rollout", "AnalysisTemplate", "AnalysisRun", "ClusterAnalysisTemplate"):
        return rollouts.ROLLOUT_API
    return "v1"


__all__ = ["ClusterConnection", "DEFAULT_PORTS"]
