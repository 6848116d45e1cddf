"""The live cluster suite: apply → status → route → weights → rollout → metrics → clean, on a
real cluster made by scripts/cluster-up.sh.

Runs only when ``GWLIB_TEST_CLUSTER`` names a reachable kube context (for example
``GWLIB_TEST_CLUSTER=kind-gwlib``); skipped with the reason otherwise. Everything it creates
lives in namespace ``gwlib-live`` and GatewayClass ``gwlib-live`` and is removed at the end
(``clean`` removes only what gwlib created: the bootstrap's smoke test stays).

    scripts/cluster-up.sh
    GWLIB_TEST_CLUSTER=kind-gwlib .venv/bin/python -m pytest tests/cluster -p no:nbval -o addopts="" -v
"""
from __future__ import annotations

import os
import time

import pytest

CONTEXT = os.environ.get("GWLIB_TEST_CLUSTER", "").strip()
NS = "gwlib-live"
HOST = "live.gwlib.test"

MANIFESTS = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
  annotations: {{linkerd.io/inject: enabled}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: gwlib-live}}
spec: {{controllerName: gwlib.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: {NS}}}
spec:
  gatewayClassName: gwlib-live
  listeners:
  - {{name: http, protocol: HTTP, port: 80, hostname: {HOST}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-v1, namespace: {NS}}}
spec:
  selector: {{app: web, version: v1}}
  ports: [{{name: http, port: 8080, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-v2, namespace: {NS}}}
spec:
  selector: {{app: web, version: v2}}
  ports: [{{name: http, port: 8080, targetPort: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: {NS}}}
spec:
  parentRefs: [{{name: web, sectionName: http}}]
  hostnames: [{HOST}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
    backendRefs:
    - {{name: web-v1, port: 8080, weight: 100}}
    - {{name: web-v2, port: 8080, weight: 0}}
"""

ROLLOUT = f"""
apiVersion: v1
kind: Service
metadata: {{name: demo-stable, namespace: {NS}}}
spec:
  selector: {{app: demo}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: demo-canary, namespace: {NS}}}
spec:
  selector: {{app: demo}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: demo, namespace: {NS}}}
spec:
  parentRefs: [{{name: web, sectionName: http}}]
  hostnames: [{HOST}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /demo}}}}]
    backendRefs:
    - {{name: demo-stable, port: 80, weight: 100}}
    - {{name: demo-canary, port: 80, weight: 0}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: demo, namespace: {NS}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: demo}}}}
  template:
    metadata:
      labels: {{app: demo, version: VERSION}}
    spec:
      containers:
      - {{name: demo, image: example/demo:VERSION, ports: [{{name: http, containerPort: 8080}}]}}
  strategy:
    canary:
      canaryService: demo-canary
      stableService: demo-stable
      trafficRouting:
        plugins:
          argoproj-labs/gatewayAPI: {{httpRoute: demo, namespace: {NS}}}
      steps:
      - setWeight: 50
      - pause: {{}}
"""


@pytest.fixture(scope="module")
def conn():
    if not CONTEXT:
        pytest.skip("GWLIB_TEST_CLUSTER is not set: the live suite needs a cluster from scripts/cluster-up.sh "
                    "(GWLIB_TEST_CLUSTER=kind-gwlib)")
    from gwlib.cluster import ClusterConnection, ClusterError

    try:
        c = ClusterConnection(context=CONTEXT, timeout=300, poll=2.0)
        c.api.request("GET", "/version", timeout=5)
    except ClusterError as exc:
        pytest.skip(f"GWLIB_TEST_CLUSTER={CONTEXT} is not reachable: {exc}")
    c.delete(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n", wait=True)
    yield c
    c.clean(wait=True)
    c.close()


def _until(check, timeout: float = 90.0, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(every)


def test_apply_and_status(conn):
    conn.apply(MANIFESTS)
    st = conn.wait(ready=True, timeout=300)
    rows = {(r["kind"], r["object"], r["where"], r["type"]): r["status"] for r in st.conditions()}
    assert rows[("Gateway", f"{NS}/web", "", "Programmed")] == "True"
    assert rows[("HTTPRoute", f"{NS}/web", f"parent {NS}/web (http)", "Accepted")] == "True"
    assert rows[("HTTPRoute", f"{NS}/web", f"parent {NS}/web (http)", "ResolvedRefs")] == "True"


def test_route_through_the_gateway(conn):
    req = {"gateway": f"{NS}/web", "host": HOST, "path": "/p?q=1", "headers": {"X-Echo-Set-Header": "X-Foo:bar"}}
    ans = _until(lambda: (lambda a: a if a.get("status") == 200 else None)(conn.request(req)))
    assert ans, conn.request(req)
    assert ans["backend"] == {"namespace": NS, "name": "web-v1", "port": 8080}
    assert ans["request"]["path"] == "/p?q=1" and ans["request"]["host"] == HOST
    assert ans["headers"].get("X-Foo") == "bar"
    assert conn.request(gateway=f"{NS}/web", host="nobody.gwlib.test")["status"] == 404


def test_weights(conn):
    req = {"gateway": f"{NS}/web", "host": HOST, "path": "/"}
    conn.set_weights(f"{NS}/web", {"web-v1": 50, "web-v2": 50})
    counts = _until(lambda: (lambda c: c if len(c) == 2 else None)(conn.sample(req, n=60)))
    assert counts and set(counts) == {f"{NS}/web-v1", f"{NS}/web-v2"}
    assert all(n >= 10 for n in counts.values()), counts
    conn.set_weights(f"{NS}/web", {"web-v1": 0, "web-v2": 100})
    assert _until(lambda: conn.sample(req, n=20) == {f"{NS}/web-v2": 20})


def test_rollout_promote_and_abort(conn):
    name = f"{NS}/demo"
    conn.apply(ROLLOUT.replace("VERSION", "v1"))
    assert conn.wait_rollout(name, phases=("Healthy",), timeout=300)["phase"] == "Healthy"
    conn.apply(ROLLOUT.replace("VERSION", "v2"), wait=False)
    s = conn.wait_rollout(name, phases=("Paused",), timeout=300)
    assert s["step"] == 1 and s["weights"]["canary"] == 50
    req = {"gateway": f"{NS}/web", "host": HOST, "path": "/demo"}
    counts = _until(lambda: (lambda c: c if len(c) == 2 else None)(conn.sample(req, n=60)))
    assert counts and set(counts) == {f"{NS}/demo-stable", f"{NS}/demo-canary"}, counts
    conn.promote(name)
    assert conn.wait_rollout(name, phases=("Healthy",), timeout=300)["canary_hash"] == \
        conn.rollout_status(name)["stable_hash"]
    conn.apply(ROLLOUT.replace("VERSION", "v3"), wait=False)
    conn.wait_rollout(name, phases=("Paused",), timeout=300)
    s = conn.abort(name)
    assert s["aborted"]
    s = conn.wait_rollout(name, phases=("Degraded",), timeout=300)
    assert s["weights"].get("canary") in (0, None)


RUN = ROLLOUT.replace("demo", "run").replace(
    "metadata: {name: run, namespace: " + NS + "}\nspec:\n  replicas",
    "metadata: {name: run, namespace: " + NS + ", annotations: {gwlib.dev/stable-version: v1}}\nspec:\n  replicas")


def test_rollout_run_follows_the_real_rollout(conn):
    """The notebooks' call on a cluster: Argo Rollouts runs the steps, gwlib starts the
    update, sends traffic at each step and reads the timeline back."""
    from gwlib.rollout import RolloutRun

    conn.apply(RUN.replace("VERSION", "v2"))
    run = RolloutRun(conn, f"{NS}/run", requests_per_step=60, auto_promote=True,
                     request={"gateway": f"{NS}/web", "host": HOST, "path": "/run"})
    timeline = run.run().to_dict()
    assert timeline["phase"] == "Healthy", timeline["message"]
    first = timeline["steps"][0]
    assert first["step"] == {"setWeight": 50}
    assert first["weights"] == {f"{NS}/run-stable": 50, f"{NS}/run-canary": 50}
    assert first["requests"] == 60 and not first["errors"]


def test_linkerd_proxy_metrics(conn):
    pods = conn.api.request("GET", f"/api/v1/namespaces/{NS}/pods", response_type="V1PodList")
    from gwlib.cluster import metrics
    if not any(metrics.is_meshed(conn.api_client.sanitize_for_serialization(p)) for p in pods.items):
        pytest.skip("no meshed pod in the namespace (cluster-up.sh --skip-linkerd?)")
    scrape = conn.scrape_proxies(NS)
    assert scrape.samples and not scrape.errors
    frame = scrape.golden()
    assert frame["requests"].sum() > 0


def test_clean_removes_exactly_what_gwlib_created(conn):
    targets = conn.clean(dry_run=True)
    assert {"apiVersion": "v1", "kind": "Namespace", "namespace": None, "name": NS} in targets
    assert not any(t["name"] == "gwlib-smoke" for t in targets)
    conn.clean(wait=True)
    assert conn.get("Namespace", NS) is None
    assert conn.get("Namespace", "gwlib-smoke") is not None        # the bootstrap's, not gwlib's
    assert conn.status() == []
