"""Decisions per second of gwlib's reference router (``gwlib.router.Router.route``).

Route tables of 10, 100 and 1,000 HTTPRoutes spread over as many hostnames (one exact
hostname per route, plus a few wildcard and catch-all routes), each with three rules
(Exact, PathPrefix with a header match, PathPrefix) and a 90/10 weighted split. Requests
hit random hostnames and paths. Prints decisions/s and the ratio to the 10-route run in the
same process: the virtual hosts are indexed by host, so the ratio should stay near 1 as
the number of hostnames grows (target: >= 20,000 decisions/s at 100 routes).

    python benchmarks/route.py [--seconds 1.0]

Nothing here asserts on time; tests never do.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gwlib  # noqa: E402
from gwlib.router import Router  # noqa: E402

GW = "gateway.networking.k8s.io/v1"


def manifests(n_routes: int) -> list[dict]:
    docs: list[dict] = [
        {"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "gwlib"},
         "spec": {"controllerName": "gwlib.dev/gateway-controller"}},
        {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "bench", "namespace": "bench"},
         "spec": {"gatewayClassName": "gwlib", "listeners": [
             {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}},
    ]
    for v in ("stable", "canary"):
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": v, "namespace": "bench"},
                     "spec": {"ports": [{"port": 8080}]}})

    def rules():
        backends = [{"name": "stable", "port": 8080, "weight": 90}, {"name": "canary", "port": 8080, "weight": 10}]
        return [
            {"matches": [{"path": {"type": "Exact", "value": "/healthz"}}], "backendRefs": backends[:1]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                          "headers": [{"name": "x-canary", "value": "true"}]}], "backendRefs": backends[1:]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends},
        ]

    for i in range(n_routes):
        docs.append({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": f"r{i}", "namespace": "bench"},
                     "spec": {"parentRefs": [{"name": "bench"}], "hostnames": [f"h{i}.bench.example.com"],
                              "rules": rules()}})
    for j, host in enumerate(("*.bench.example.com", "*.example.com")):
        docs.append({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": f"wild{j}", "namespace": "bench"},
                     "spec": {"parentRefs": [{"name": "bench"}], "hostnames": [host], "rules": rules()}})
    docs.append({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "catchall", "namespace": "bench"},
                 "spec": {"parentRefs": [{"name": "bench"}], "rules": rules()}})
    return docs


def requests_for(n_routes: int, count: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    paths = ["/healthz", "/api/users?id=7", "/static/app.js", "/"]
    out = []
    for _ in range(count):
        i = rng.randrange(n_routes)
        host = rng.choice([f"h{i}.bench.example.com", f"h{i}.bench.example.com:8080",
                           f"x{i}.bench.example.com", "elsewhere.io"])
        headers = {"X-Canary": "true"} if rng.random() < 0.2 else {}
        out.append({"gateway": "bench/bench", "host": host, "path": rng.choice(paths), "headers": headers})
    return out


def measure(n_routes: int, seconds: float) -> tuple[float, float]:
    t0 = time.perf_counter()
    router = Router(gwlib.load(manifests(n_routes)), seed=1)
    build_s = time.perf_counter() - t0
    reqs = requests_for(n_routes, 5000)
    for r in reqs[:500]:  # warm-up
        router.route(r)
    done, start = 0, time.perf_counter()
    while True:
        for r in reqs:
            router.route(r)
        done += len(reqs)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, build_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per table size")
    args = ap.parse_args(argv)
    print(f"{'routes':>7} {'hostnames':>9} {'decisions/s':>12} {'vs 10 routes':>13} {'build (s)':>10}")
    base = None
    for n in (10, 100, 1000):
        rate, build_s = measure(n, args.seconds)
        base = base or rate
        print(f"{n:>7} {n + 2:>9} {rate:>12,.0f} {rate / base:>12.2f}x {build_s:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
