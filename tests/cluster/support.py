"""Shared by the cluster-mode unit tests: manifests, a connection to the fake API server,
and a stand-in for the controllers (what Traefik and the Deployment controller write)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

SHOP = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: shop}
spec:
  gatewayClassName: traefik
  listeners:
  - {name: http, protocol: HTTP, port: 80}
---
apiVersion: v1
kind: Service
metadata: {name: web-v1, namespace: shop}
spec:
  selector: {app: web, version: v1}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: shop}
spec:
  selector: {app: web, version: v2}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v2, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, version: v2}}
  template:
    metadata:
      labels: {app: web, version: v2}
      annotations: {linkerd.io/inject: enabled}
    spec:
      containers:
      - name: web
        image: ghcr.io/example/web:2.0.0
        args: ["--listen=:8080"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: web, sectionName: http}]
  hostnames: [shop.example.com]
  rules:
  - backendRefs:
    - {name: web-v1, port: 8080, weight: 90}
    - {name: web-v2, port: 8080, weight: 10}
"""


def fixture(name: str):
    text = (FIXTURES / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def connect(api, tmp_path, **kw):
    from gwlib.cluster import ClusterConnection

    kw.setdefault("progress", False)
    kw.setdefault("poll", 0.0)
    kw.setdefault("timeout", 0.0)
    return ClusterConnection(kubeconfig=api.kubeconfig(tmp_path / "kubeconfig"), **kw)


def reconcile(api, gateway_status: str = "gateway-status.json", route_status: str = "httproute-status.json") -> None:
    """Write what the controllers write: GatewayClass, Gateway and route status at the
    objects' current generation, and available Deployments."""
    for (plural, _group, ns, name), obj in list(api.objects.items()):
        gen = obj["metadata"].get("generation", 1)
        if plural == "gatewayclasses":
            st = fixture("gatewayclass-status.json")
        elif plural == "gateways":
            st = fixture(gateway_status)
        elif plural == "httproutes":
            st = fixture(route_status)
            for p in st["parents"]:
                p["parentRef"] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": ns,
                                  **{k: v for k, v in obj["spec"]["parentRefs"][0].items()}}
        elif plural == "deployments":
            n = obj["spec"].get("replicas", 1)
            api.set_status("Deployment", name, ns, {"observedGeneration": gen, "replicas": n, "updatedReplicas": n,
                                                    "readyReplicas": n, "availableReplicas": n})
            continue
        else:
            continue
        _stamp(st, gen)
        api.set_status(obj["kind"], name, ns, st)


def _stamp(status: dict, gen: int) -> None:
    for c in status.get("conditions") or []:
        if "observedGeneration" in c:
            c["observedGeneration"] = gen
    for lst in (status.get("listeners") or []) + (status.get("parents") or []):
        _stamp(lst, gen)


def managed(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {}).setdefault("labels", {})["app.kubernetes.io/managed-by"] = "gwlib"
    return obj
