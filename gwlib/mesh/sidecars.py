"""The lab's mesh: an Envoy that stands in for the outbound side of linkerd2-proxy.

What Linkerd does
-----------------
Linkerd injects a proxy (linkerd2-proxy, written in Rust) into every meshed pod. iptables
rules send the pod's outgoing connections to the proxy's *outbound* side, which looks up
the destination (a Service's cluster IP and port), asks the control plane for that
Service's policy — the GAMMA routes that apply to *this* client — and applies them:
matching, filters, weighted backends, retries, timeouts; then it opens an mTLS connection
to the chosen endpoint, whose own proxy (the *inbound* side) checks authorization and hands
the request to the application. Unmeshed pods have no proxy: kube-proxy sends their
traffic to any endpoint of the Service and no route applies to it.

What the lab does instead
-------------------------
One extra Envoy process (started on the first mesh request, or when a workload is meshed)
holds, for every *client* and every Service port, one listener on 127.0.0.1 — the address
that client's sidecar would intercept for that Service's cluster IP and port. gwlib has no
iptables, so the lab's client connects to that listener directly. A client is a meshed
Deployment (``linkerd.io/inject``, :mod:`gwlib.mesh.inject`) or, for a request that names
only a namespace (the design's mesh request form), an anonymous meshed client of that
namespace (``ns/*``). Every listener is programmed from the IR's mesh table for that
client (:meth:`gwlib.ir.MeshPort.table`: its namespace's consumer routes, else the
producer routes, else the Service itself) by the ordinary Envoy translator
(:func:`gwlib.dataplanes.envoy.translate`): each (client, Service) becomes a synthetic
Gateway whose listeners are the Service's ports and whose only virtual host is that table.
So north/south and east/west share every line of route translation, and the answers agree
with the reference router by construction.

Each sidecar adds ``X-Gwlib-Sidecar: <client>`` to the requests it forwards (the backend
sees it) and to the responses (the caller sees it): the hop is visible in every answer.
The ``retry.linkerd.io/*`` and ``timeout.linkerd.io/*`` annotations become Envoy retry
policies and timeouts on the sidecar's routes (:func:`gwlib.mesh.linkerd.policies`; the
routes' own ``rules[].timeouts`` are translated as at a Gateway). Differences: Envoy retries
within the backend it picked (Linkerd may retry on another backend), with a 2 ms back-off.

What it does not show: no mTLS between sidecars (and no identities on the wire: see
:attr:`gwlib.mesh.inject.Workload.identity`), no inbound proxy and no authorization
policy, no protocol detection or HTTP/2 upgrade between proxies, no load balancing by
latency (EWMA) across several endpoints (each Service port has one echo endpoint), no
circuit breaking, and none of linkerd2-proxy's performance: Envoy is a different proxy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from ..dataplanes import Binding, Config
from ..ir import IR, Action, GatewayIR, ListenerIR, RouteEntry, VirtualHost

#: The header every sidecar adds to forwarded requests and to responses.
SIDECAR_HEADER = "X-Gwlib-Sidecar"
#: The route name of "no GAMMA route: the Service itself" entries.
DEFAULT_ROUTE = ""


@dataclass(frozen=True)
class Client:
    """A meshed client: a Deployment, or (``workload`` None) any meshed pod of a namespace."""
    namespace: str
    workload: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.workload or '*'}"


def gateway_key(client: Client, service: str) -> str:
    """The synthetic Gateway key of ``client``'s sidecar for ``service`` ("ns/name")."""
    sns, sname = service.split("/", 1)
    return f"{client.namespace}/sidecar__{client.workload or 'any'}__{sns}__{sname}"


def _default_table(action: Action) -> VirtualHost:
    """No route for this client: every request to the Service port goes to the Service."""
    http = RouteEntry(route=DEFAULT_ROUTE, kind="HTTPRoute", rule=0, match_index=0,
                      match={"path": {"type": "PathPrefix", "value": "/"}}, hostname="*",
                      precedence=(), action=action, matched_prefix="/")
    grpc = RouteEntry(route=DEFAULT_ROUTE, kind="GRPCRoute", rule=0, match_index=0, match={}, hostname="*",
                      precedence=(), action=action)
    return VirtualHost(hostname="*", http=[http], grpc=[grpc])


def sidecar_ir(ir: IR, clients: list[Client]) -> IR:
    """An IR whose Gateways are the sidecars: one per (client, Service), with one HTTP
    listener per Service port holding that client's mesh table."""
    out = IR(services=dict(ir.services))
    for client in clients:
        for skey, ms in sorted(ir.mesh.items()):
            svc = ir.services.get(skey) or {}
            if (svc.get("spec") or {}).get("type") == "ExternalName":
                continue  # no endpoints to send to
            gkey = gateway_key(client, skey)
            gir = GatewayIR(key=gkey, class_name="linkerd", controller_name="linkerd.io/policy-controller",
                            addresses=[{"type": "IPAddress", "value": "127.0.0.1"}])
            for port, mp in sorted(ms.ports.items()):
                table = mp.table(client.namespace)
                lir = ListenerIR(gateway=gkey, name=f"port-{port}", port=port, protocol="HTTP", hostname=None,
                                 tls_mode=None)
                lir.fallback = table if table is not None else _default_table(mp.default)
                gir.listeners.append(lir)
                gir.ports[port] = [lir]
            if gir.listeners:
                out.gateways[gkey] = gir
    return out


def _duration(text: str | None) -> str | None:
    from ..dataplanes.envoy import _duration as envoy_duration
    return envoy_duration(text)


def _decorate(config: Config, rc_clients: dict[str, tuple[Client, str]], policies: dict[str, dict]) -> Config:
    """Add the sidecar header to every sidecar route config, and the Linkerd retry and
    timeout policies (:func:`gwlib.mesh.linkerd.policies`) to its routes."""
    from ..dataplanes.envoy import BOOTSTRAP, RDS_DIR, discovery_file

    files = dict(config.files)
    boot = json.loads(files[BOOTSTRAP])
    boot["stats_flush_interval"] = "0.25s"   # latency histograms (golden metrics) update quickly
    files[BOOTSTRAP] = json.dumps(boot, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    for path, text in config.files.items():
        if not path.startswith(RDS_DIR + "/"):
            continue
        doc = json.loads(text)
        changed = False
        for rc in doc.get("resources") or []:
            hit = rc_clients.get(rc.get("name", ""))
            if hit is None:
                continue
            client, service = hit
            hv = {"header": {"key": SIDECAR_HEADER.lower(), "value": client.key},
                  "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            rc["request_headers_to_add"] = [hv]
            rc["response_headers_to_add"] = [hv]
            for vh in rc.get("virtual_hosts") or []:
                for r in vh.get("routes") or []:
                    _apply_policy(r, policies, service)
            changed = True
        if changed:
            files[path] = discovery_file(doc["resources"], None)
    return Config(files=files, findings=list(config.findings))


def _apply_policy(route: dict, policies: dict[str, dict], service: str) -> None:
    """The Linkerd retry/timeout policy of the route that owns this Envoy route (by the
    route key in its name), else of the parent Service, onto the Envoy route."""
    action = route.get("route")
    if not isinstance(action, dict):
        return
    name = route.get("name", "")
    key = name.split("/rule/", 1)[0] if "/rule/" in name else ""
    pol = policies.get(key) if key else None
    if pol is None:
        pol = policies.get("svc:" + service)
    if not pol:
        return
    grpc = "grpc" in (route.get("match") or {})
    retry = pol.get("grpc" if grpc else "http") or {}
    if retry.get("on"):
        rp = dict(action.get("retry_policy") or {})
        rp["retry_on"] = ",".join(retry["on"])
        if retry.get("codes"):
            rp["retriable_status_codes"] = list(retry["codes"])
        rp["num_retries"] = int(retry.get("limit", 1))
        # a short back-off (Envoy's default is 25 ms, growing): keeps the lab's retries fast
        rp["retry_back_off"] = {"base_interval": "0.002s", "max_interval": "0.02s"}
        if retry.get("timeout"):
            rp["per_try_timeout"] = _duration(retry["timeout"])
        action["retry_policy"] = rp
    t = pol.get("timeouts") or {}
    if t.get("request"):
        action["timeout"] = _duration(t["request"])
    if t.get("idle"):
        action["idle_timeout"] = _duration(t["idle"])
    if t.get("response") and not (retry.get("on") and retry.get("timeout")):
        rp = dict(action.get("retry_policy") or {"num_retries": 0})
        rp["per_try_timeout"] = _duration(t["response"])
        action["retry_policy"] = rp


class SidecarProxy:
    """The lab's sidecars: one Envoy process (see the module docstring).

    ``apply(ir, clients, upstreams, ports)`` programs it: ``ports`` maps (client key,
    "ns/svc", port) to the local port of that sidecar listener; ``upstreams`` is the lab's
    :class:`~gwlib.dataplanes.Binding` upstreams (the echo endpoints). The first call
    starts Envoy; later calls swap the files live."""

    def __init__(self, workdir, supervisor, policies_of=None):
        from ..dataplanes.envoy import EnvoyDataPlane

        outer = self

        class _Envoy(EnvoyDataPlane):
            def _apply(self, ir, binding):  # the Envoy driver's apply, with the sidecar decorations
                from ..dataplanes import envoy as E
                from ..processes import free_port
                if binding.admin_port is None:
                    if self.admin_port is None:
                        self.admin_port = free_port()
                    binding = replace(binding, admin_port=self.admin_port)
                cfg = _decorate(E.translate(ir, binding, indent=None), outer._rc_clients, outer._policies)
                if self.process is None:
                    self._start(cfg.files, binding.admin_port)
                else:
                    self.process.check()
                    if cfg.files[E.BOOTSTRAP] != self._files.get(E.BOOTSTRAP):
                        self._restart(cfg.files, binding.admin_port)
                    else:
                        self._update(cfg.files)
                self.findings = cfg.findings
                return list(cfg.findings)

        self.envoy = _Envoy(workdir, supervisor)
        self._rc_clients: dict[str, tuple[Client, str]] = {}
        self._policies: dict[str, dict] = {}
        self.ports: dict[tuple[str, str, int], int] = {}

    def apply(self, ir: IR, clients: list[Client], upstreams: dict, ports: dict[tuple[str, str, int], int],
              policies: dict[str, dict] | None = None) -> list:
        """Program the sidecars of ``clients``; ``ports[(client key, "ns/svc", port)]`` is
        the local port of each listener (entries for unknown clients or ports are left out)."""
        sir = sidecar_ir(ir, clients)
        by_key = {c.key: c for c in clients}
        self._rc_clients = {}
        self._policies = dict(policies or {})
        listeners = {}
        for (ckey, skey, port), local in ports.items():
            client = by_key.get(ckey)
            if client is None:
                continue
            gk = gateway_key(client, skey)
            if gk in sir.gateways and port in sir.gateways[gk].ports:
                listeners[(gk, port)] = local
                ns, name = gk.split("/", 1)
                self._rc_clients[f"http_{ns}_{name}_{port}"] = (client, skey)
        self.ports = {k: v for k, v in ports.items() if k[0] in by_key}
        return self.envoy.apply(sir, Binding(listeners=listeners, upstreams=dict(upstreams)))

    @property
    def running(self) -> bool:
        return self.envoy.running

    def metrics(self) -> list[dict]:
        """Golden metrics per (client, Service port), as the sidecars measured them: request
        count, success rate (non-5xx share) and latency percentiles (ms, client side, from
        Envoy's histograms; refreshed every 0.25 s). Linkerd's proxies export the same
        kind of numbers (``response_total``, ``response_latency_ms``) for linkerd-viz."""
        import http.client as hc

        if not self.running:
            return []
        conn = hc.HTTPConnection("127.0.0.1", self.envoy.admin_port, timeout=5)
        try:
            conn.request("GET", "/stats?format=json&filter=%5Ehttp%5C..*sidecar__")
            data = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        counters: dict[str, float] = {}
        quantiles: dict[str, dict[float, float]] = {}
        for st in data.get("stats") or []:
            if "name" in st:
                counters[st["name"]] = st.get("value") or 0
            hist = st.get("histograms")
            if isinstance(hist, dict):
                qs = hist.get("supported_quantiles") or []
                for h in hist.get("computed_quantiles") or []:
                    vals = [v.get("cumulative") for v in h.get("values") or []]
                    quantiles[h["name"]] = {q: v for q, v in zip(qs, vals) if v is not None}
        rows = []
        for rc, (client, service) in sorted(self._rc_clients.items()):
            stat = rc[len("http_"):]
            port = int(stat.rsplit("_", 1)[1])
            total = counters.get(f"http.{stat}.downstream_rq_completed", 0)
            if not total:
                continue
            errors = counters.get(f"http.{stat}.downstream_rq_5xx", 0)
            q = quantiles.get(f"http.{stat}.downstream_rq_time", {})
            rows.append({"client": client.key, "service": service, "port": port, "requests": int(total),
                         "success_rate": (total - errors) / total,
                         "p50_ms": q.get(50.0), "p99_ms": q.get(99.0)})
        return rows

    def stats(self, pattern: str = "") -> dict[str, Any]:
        return self.envoy.stats(pattern)

    def close(self) -> None:
        self.envoy.close()
