"""Echo backends in a cluster: the upstream conformance echo server behind every Service.

The lab answers every Service port with an echo endpoint (:mod:`gwlib.backends`); cluster
mode does the same with the Gateway API project's own conformance echo server
(``echo-basic``), which reports what it received as JSON (``path``, ``host``, ``method``,
``headers``, ``namespace``, ``service``, ``pod``) and sets the response headers asked for
in ``X-Echo-Set-Header`` — the behaviour gwlib's echo model copies.

With ``backends="echo"`` (the default of :class:`~gwlib.cluster.ClusterConnection`):

* a Deployment or Argo Rollout behind a Service of the manifests keeps its name, labels, annotations
  (``linkerd.io/inject``, ``version``) and container ports, but its containers run the echo
  server (one container per container port: ``HTTP_PORT`` is the port), so the same YAML
  answers like the lab does; the images replaced are listed once in a
  :class:`~gwlib.cluster.errors.ClusterWarning`;
* a Service with a selector that no workload of the manifests matches gets an echo
  Deployment ``gwlib-echo-<service>`` whose pods carry the selector's labels, one container
  per target port;
* backends of a GRPCRoute run the echo's gRPC server (``GRPC_ECHO_SERVER=1``), which
  answers the service :data:`GRPC_ECHO_SERVICE` (methods ``Echo`` and ``EchoTwo``; any other
  service or method is UNIMPLEMENTED) with an ``EchoResponse`` whose ``assertions`` report
  the method, the request metadata, the ``:authority`` and the pod's namespace, Service and
  name. :func:`decode` and :func:`encode` read and write those messages (the upstream
  ``grpcecho.proto``, see :data:`PROTO`), from :mod:`gwlib.backends.grpcecho` — the lab's
  echo answers the same service the same way.

Every object made here carries gwlib's label like everything else gwlib applies.
``backends="as-written"`` applies workloads unchanged and adds nothing.
"""
from __future__ import annotations

import copy
import re

#: The Gateway API conformance echo server, at the tag the upstream conformance base
#: manifests pin (kubernetes-sigs/gateway-api conformance/base/manifests.yaml). Keep equal
#: to ECHO_IMAGE in scripts/versions.env (a test checks).
ECHO_IMAGE = "gcr.io/k8s-staging-gateway-api/echo-basic:v20240412-v1.0.0-394-g40c666fd"
ECHO_PREFIX = "gwlib-echo-"
#: the echo's own default HTTP port (when a Service's targetPort is a name no workload declares)
DEFAULT_PORT = 3000
WORKLOAD_KINDS = ("Deployment", "Rollout")


def _template(obj: dict) -> dict | None:
    return ((obj.get("spec") or {}).get("template")) if obj.get("kind") in WORKLOAD_KINDS else None


def _pod_labels(obj: dict) -> dict:
    tpl = _template(obj) or {}
    return dict(((tpl.get("metadata") or {}).get("labels")) or {})


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _env(service: str | None, port: int, h2c_port: int, grpc: bool) -> list[dict]:
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "HTTP_PORT", "value": str(port)},
        {"name": "H2C_PORT", "value": str(h2c_port)},
    ]
    if service:
        env.insert(2, {"name": "SERVICE_NAME", "value": service})
    if grpc:
        env.append({"name": "GRPC_ECHO_SERVER", "value": "1"})
    return env


def _containers(ports: list[tuple[str | None, int]], base: str, service: str | None, grpc: bool) -> list[dict]:
    """One echo container per (port name, port number)."""
    used = {p for _, p in ports}
    h2c = 39001
    out = []
    for i, (pname, port) in enumerate(ports):
        while h2c in used:
            h2c += 1
        used.add(h2c)
        c = {"name": base if i == 0 else f"{base}-{port}"[:63], "image": ECHO_IMAGE,
             "imagePullPolicy": "IfNotPresent",
             "ports": [{"containerPort": port, "protocol": "TCP", **({"name": pname} if pname else {})}],
             "env": _env(service, port, h2c, grpc),
             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
        out.append(c)
    return out


def _low_ports(ports: list[tuple[str | None, int]]) -> bool:
    return any(p < 1024 for _, p in ports)


def _pod_security(spec: dict, ports: list[tuple[str | None, int]]) -> None:
    if _low_ports(ports):  # the echo binds a privileged port without being root
        sc = spec.setdefault("securityContext", {})
        sysctls = [s for s in sc.get("sysctls") or [] if s.get("name") != "net.ipv4.ip_unprivileged_port_start"]
        sysctls.append({"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"})
        sc["sysctls"] = sysctls


def substitute(workload: dict, service: str | None = None, grpc: bool = False) -> dict:
    """A copy of a Deployment/Rollout whose containers run the echo server on the same ports."""
    out = copy.deepcopy(workload)
    spec = out["spec"]["template"].setdefault("spec", {})
    ports: list[tuple[str | None, int]] = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if isinstance(p.get("containerPort"), int) and (p.get("protocol") or "TCP") == "TCP":
                if p["containerPort"] not in {q for _, q in ports}:
                    ports.append((p.get("name"), p["containerPort"]))
    if not ports:
        ports = [(None, DEFAULT_PORT)]
    first = (spec.get("containers") or [{}])[0].get("name") or "echo"
    spec["containers"] = _containers(ports, first, service, grpc)
    spec.pop("initContainers", None)  # the app's own setup steps mean nothing to the echo
    _pod_security(spec, ports)
    return out


def images(workload: dict) -> list[str]:
    spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c.get("image") or "?" for c in spec.get("containers") or []]


def _service_ports(service: dict, workloads: list[dict]) -> list[tuple[str | None, int]]:
    ports: list[tuple[str | None, int]] = []
    for i, p in enumerate((service.get("spec") or {}).get("ports") or []):
        if (p.get("protocol") or "TCP") != "TCP":
            continue
        target = p.get("targetPort", p.get("port"))
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        if isinstance(target, int):
            entry = (None, target)
        else:  # a named port: give the echo a number and that name
            entry = (str(target), DEFAULT_PORT + len(ports))
        if entry[1] not in {q for _, q in ports}:
            ports.append(entry)
    return ports


def echo_deployment(service: dict, grpc: bool = False) -> dict:
    """A Deployment of echo servers for a Service no workload of the manifests backs."""
    meta = service.get("metadata") or {}
    name = meta.get("name")
    selector = dict((service.get("spec") or {}).get("selector") or {})
    ports = _service_ports(service, []) or [(None, DEFAULT_PORT)]
    labels = dict(selector)
    labels["gwlib.dev/echo"] = name
    pod_spec: dict = {"containers": _containers(ports, "echo", name, grpc)}
    _pod_security(pod_spec, ports)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": _dns_label(ECHO_PREFIX + name), "namespace": meta.get("namespace") or "default",
                     "labels": {"app.kubernetes.io/name": "gwlib-echo", "gwlib.dev/echo": name}},
        "spec": {"replicas": 1,
                 "selector": {"matchLabels": {"gwlib.dev/echo": name}},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    }


def _dns_label(name: str) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", name.lower())[:63].strip("-")
    return name or "gwlib-echo"


def grpc_services(objects: list[dict]) -> set[tuple[str, str]]:
    """(namespace, name) of the Services GRPCRoutes send traffic to."""
    out = set()
    for o in objects:
        if o.get("kind") != "GRPCRoute":
            continue
        ns = (o.get("metadata") or {}).get("namespace") or "default"
        for rule in (o.get("spec") or {}).get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core"):
                    out.add((ref.get("namespace") or ns, ref.get("name")))
    return out


def plan(objects: list[dict]) -> tuple[list[dict], list[str]]:
    """The objects to apply with echo backends: workloads substituted, echo Deployments
    added for Services without a workload. Returns (objects, notes on what changed)."""
    grpc = grpc_services(objects)
    services = [o for o in objects if o.get("kind") == "Service" and o.get("apiVersion") == "v1"]
    workloads = [o for o in objects if o.get("kind") in WORKLOAD_KINDS and _template(o) is not None]
    out, notes = [], []
    for o in objects:
        ns = (o.get("metadata") or {}).get("namespace") or "default"
        backing = sorted((s.get("metadata") or {}).get("name") for s in services
                         if ((s.get("metadata") or {}).get("namespace") or "default") == ns
                         and selects((s.get("spec") or {}).get("selector") or {}, _pod_labels(o))) \
            if o in workloads else []
        if backing:  # a workload behind a Service answers as the echo; clients stay as written
            service = backing[0] if len(backing) == 1 else None
            is_grpc = any((ns, b) in grpc for b in backing)
            new = substitute(o, service=service, grpc=is_grpc)
            was = [i for i in images(o) if i != ECHO_IMAGE]
            if was:
                notes.append(f"{o['kind']} {ns}/{o['metadata']['name']}: {', '.join(was)}")
            out.append(new)
        else:
            out.append(o)
    for s in services:
        meta = s.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        selector = (s.get("spec") or {}).get("selector") or {}
        if not selector or (s.get("spec") or {}).get("type") == "ExternalName":
            continue
        if any(((w.get("metadata") or {}).get("namespace") or "default") == ns and selects(selector, _pod_labels(w))
               for w in workloads):
            continue
        out.append(echo_deployment(s, grpc=(ns, meta.get("name")) in grpc))
    return out, notes
