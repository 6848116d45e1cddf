"""Lab speed, measured against the bare binaries in the same run (issue 4).

For each data plane (Envoy, Traefik) it prints:

1. start: time from ``gwlib.connect()`` to the first routed 200 of the talk's HTTPS route
   (echo process, proxy, validation, controller, IR, certificates, translation, first
   request), median of several labs, as a ratio to the bare binary's own start (a minimal
   static config that proxies to one local echo server that already runs); target <= 2x.
   The first lab of a process also builds gwlib's resource models once (as the first
   ``gwlib.load`` of a notebook does); that start is printed beside it;
2. reconfiguration: time from ``set_weights`` to the new split being observed
   (targets: Envoy <= 50 ms, Traefik <= 300 ms);
3. throughput: requests/s through the data plane from gwlib's own client, as a ratio to
   the same client straight to the echo backend;
4. no downtime: failed requests while 100 successive route and weight changes are applied
   under continuous traffic (>= 200 requests/s);
5. scale: 1,000 and 5,000 HTTPRoutes — translation time (IR -> data-plane config, on its
   own), the whole apply, time until the last route serves, the proxy's memory — and the propagation time of one new route added to a lab
   that holds 1,000.

Run: ``python benchmarks/lab.py [--quick]`` (quick: smaller counts, for a smoke test).
"""
from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import gwlib
from gwlib import binaries
from gwlib.backends import EchoEndpoint, EchoFleet, http_request
from gwlib.processes import Supervisor, atomic_write, free_port

ROOT = Path(__file__).resolve().parent.parent
TALK = ROOT / "data" / "manifests" / "talk"
GW = "argocd/argocd-server-gateway"
HTTPS = dict(gateway=GW, port=443, scheme="https", host="argocd.example.com")

CANARY = """
apiVersion: v1
kind: Service
metadata: {name: shop-v2, namespace: argocd}
spec: {ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: argocd}
spec:
  parentRefs: [{name: argocd-server-gateway, sectionName: https}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /shop}}]
    backendRefs:
    - {name: argocd-server, port: 80, weight: 100}
    - {name: shop-v2, port: 80, weight: 0}
"""

SCALE_GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gwlib}
spec: {controllerName: gwlib.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: scale, namespace: bench}
spec:
  gatewayClassName: gwlib
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: bench}
spec: {ports: [{port: 80}]}
"""


def scale_route(i: int) -> str:
    return (f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
            f"metadata: {{name: r{i}, namespace: bench}}\nspec:\n  parentRefs: [{{name: scale}}]\n"
            f"  hostnames: [h{i}.example.com]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /p{i}}}}}]\n"
            f"    backendRefs: [{{name: app, port: 80}}]\n")


def wait_for(check, timeout: float = 30.0, step: float = 0.002) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if check():
            return time.perf_counter() - t0
        time.sleep(step)
    raise TimeoutError("condition not reached")


def ok(address, host="x", path="/") -> bool:
    try:
        return http_request(address, "GET", path, host=host, timeout=2).status == 200
    except OSError:
        return False


def bare_start(name: str, echo_port: int, folder: Path) -> float:
    """Start the bare binary with a minimal static config to one echo server; seconds to 200."""
    port = free_port()
    sup = Supervisor(f"bare-{name}", log_dir=folder / f"bare-{name}")
    try:
        if name == "envoy":
            cfg = folder / "envoy.yaml"
            atomic_write(cfg, f"""
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bare
          route_config:
            virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: echo}}}}]}}]
          http_filters: [{{name: envoy.filters.http.router, typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}}}]
  clusters:
  - name: echo
    load_assignment:
      cluster_name: echo
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {echo_port}}}}}}}}}]}}]
""")
            argv = [binaries.find("envoy"), "-c", str(cfg), "--disable-hot-restart", "-l", "error",
                    "--base-id", str(port)]
        else:
            static, dyn = folder / "traefik.yml", folder / "dyn.yml"
            atomic_write(dyn, f"""
http:
  routers: {{all: {{rule: "PathPrefix(`/`)", service: echo, entryPoints: [web]}}}}
  services: {{echo: {{loadBalancer: {{servers: [{{url: "http://127.0.0.1:{echo_port}"}}]}}}}}}
""")
            atomic_write(static, f"""
entryPoints: {{web: {{address: "127.0.0.1:{port}"}}}}
providers: {{file: {{filename: "{dyn}"}}}}
log: {{level: ERROR}}
""")
            argv = [binaries.find("traefik"), f"--configfile={static}"]
        t0 = time.perf_counter()
        sup.start(name, argv, wait=False)
        wait_for(lambda: ok(f"127.0.0.1:{port}"))
        return time.perf_counter() - t0
    finally:
        sup.close()


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def proxy_pid(lab) -> int:
    for p in lab.supervisor.processes:
        if lab.dataplane in p.name:
            return p.pid
    return -1


_COLD = """
import sys, time, warnings
import gwlib
warnings.simplefilter("ignore")
t0 = time.perf_counter()
with gwlib.connect("lab", dataplane=sys.argv[1]) as lab:
    lab.apply(sys.argv[2])
    while lab.request(path="/", gateway=sys.argv[3], port=443, scheme="https", host="argocd.example.com")["status"] != 200:
        time.sleep(0.001)
    print(time.perf_counter() - t0)
"""


def cold_start(name: str) -> float:
    """The same start in a new Python process that has only imported gwlib: it also builds
    gwlib's resource models (once per process, as the first gwlib.load() in a notebook)."""
    out = subprocess.run([sys.executable, "-c", _COLD, name, str(TALK), GW], capture_output=True, text=True,
                         check=True, timeout=120)
    return float(out.stdout.strip().splitlines()[-1])


def translation_time(name: str, lab) -> float:
    """Seconds to translate the lab's current IR into the data plane's config (median of 3),
    on its own: no validation, no controller, no file writes, no waiting for the proxy."""
    from gwlib.dataplanes import envoy, traefik
    translate = envoy.translate if name == "envoy" else traefik.translate
    ir, binding = lab.router.ir, lab._binding   # noqa: SLF001 - the binding the lab programmed
    times = []
    for _ in range(3):
        t = time.perf_counter()
        translate(ir, binding)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(name: str, quick: bool) -> None:
    print(f"\n== {name} ==")
    folder = Path(tempfile.mkdtemp(prefix=f"gwlib-bench-{name}-"))
    with EchoFleet() as fleet:
        ep = EchoEndpoint("bench", "echo", 80, "http")
        echo_port = fleet.ensure([ep])[ep.key]
        bare = statistics.median(bare_start(name, echo_port, folder) for _ in range(3 if quick else 5))
        n = 300 if quick else 2000
        t1 = time.perf_counter()
        for _ in range(n):
            http_request(f"127.0.0.1:{echo_port}", "GET", "/", host="x")
        direct_rps = n / (time.perf_counter() - t1)

    def lab_start() -> float:
        t0 = time.perf_counter()
        with gwlib.connect("lab", dataplane=name) as lab:
            lab.apply(TALK)
            wait_for(lambda: lab.request(path="/", **HTTPS)["status"] == 200, step=0.001)
            return time.perf_counter() - t0

    # The first lab of a process also builds gwlib's resource models (pydantic, ~0.1 s,
    # once per process, as the first gwlib.load() in a notebook does): measured in a new
    # process. The labs after it start from there, which is what the target compares.
    cold = statistics.median(cold_start(name) for _ in range(1 if quick else 3))
    lab_start()   # this process's first lab
    starts = [lab_start() for _ in range(3 if quick else 5)]
    start = statistics.median(starts)
    print(f"start to first routed 200: median {start * 1000:.0f} ms = {start / bare:.2f}x the bare {name} "
          f"({bare * 1000:.0f} ms) [target <= 2x]; first lab of a new process (which also builds the resource "
          f"models once): {cold * 1000:.0f} ms = {cold / bare:.2f}x")

    with gwlib.connect("lab", dataplane=name) as lab:
        lab.apply(TALK)
        wait_for(lambda: lab.request(path="/", **HTTPS)["status"] == 200)
        lab.apply(CANARY)
        req = dict(path="/shop", **HTTPS)
        times = []
        for i in range(5 if quick else 20):
            target = "shop-v2" if i % 2 == 0 else "argocd-server"
            weights = {"argocd-server": 0, "shop-v2": 100} if target == "shop-v2" else {"argocd-server": 100, "shop-v2": 0}
            t = time.perf_counter()
            lab.set_weights("argocd/shop", weights)
            wait_for(lambda: lab.request(req)["backend"]["name"] == target, step=0.0005)
            times.append(time.perf_counter() - t)
        goal = 50 if name == "envoy" else 300
        print(f"set_weights to new split observed: median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms [target <= {goal} ms]")

        t1 = time.perf_counter()
        for _ in range(n):
            lab.request(req)
        rps = n / (time.perf_counter() - t1)
        print(f"requests/s through {name} from gwlib's client: {rps:,.0f} = {rps / direct_rps:.2f}x the same "
              f"client straight to the echo backend ({direct_rps:,.0f}/s)")

        changes = 20 if quick else 100
        failures, sent, stop = [0], [0], threading.Event()

        def load(rate: float = 250.0) -> None:
            interval, nxt = 1.0 / rate, time.perf_counter()
            while not stop.is_set():
                ans = lab.request(req)
                sent[0] += 1
                if ans.get("status") != 200:
                    failures[0] += 1
                nxt += interval
                delay = nxt - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        workers = [threading.Thread(target=load) for _ in range(2)]
        for w in workers:
            w.start()
        t1 = time.perf_counter()
        for i in range(changes):
            w = (i * 37) % 101
            lab.set_weights("argocd/shop", {"argocd-server": 100 - w, "shop-v2": w})
            if i % 10 == 9:  # a route change too, not only weights
                path = "/shop" if (i // 10) % 2 else "/shop/"
                lab.apply(CANARY.replace("value: /shop}", f"value: {path}}}"))
        elapsed = time.perf_counter() - t1
        stop.set()
        for w in workers:
            w.join()
        print(f"no downtime: {changes} changes in {elapsed:.1f} s under {sent[0] / elapsed:,.0f} req/s: "
              f"{failures[0]} failed of {sent[0]} [target: 0 with Envoy]")

    for count in ((200,) if quick else (1000, 5000)):
        with gwlib.connect("lab", dataplane=name) as lab:
            text = SCALE_GATEWAY + "".join(scale_route(i) for i in range(count))
            t1 = time.perf_counter()
            lab.apply(text)
            applied = time.perf_counter() - t1
            last = count - 1
            served = wait_for(lambda: lab.request(gateway="bench/scale", host=f"h{last}.example.com",
                                                  path=f"/p{last}")["status"] == 200, timeout=120)
            translate = translation_time(name, lab)
            print(f"{count} HTTPRoutes: translation IR -> {name} config {translate * 1000:.0f} ms; apply (validate + "
                  f"controller + IR + translate + write + live) {applied:.2f} s; last route serving "
                  f"{applied + served:.2f} s after apply began; {name} RSS {rss_mib(proxy_pid(lab)):.0f} MiB")
            if count == (200 if quick else 1000):
                t1 = time.perf_counter()
                lab.apply(scale_route(count))
                wait_for(lambda: lab.request(gateway="bench/scale", host=f"h{count}.example.com",
                                             path=f"/p{count}")["status"] == 200, timeout=60)
                print(f"one new route added to {count}: serving after {(time.perf_counter() - t1) * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dataplane", choices=("envoy", "traefik"), action="append")
    args = parser.parse_args()
    # as on a learner's machine after the first import (Python caches the bytecode); here
    # PYTHONDONTWRITEBYTECODE may be set, and every start would compile gwlib again
    compileall.compile_dir(str(ROOT / "gwlib"), quiet=1)
    for name in args.dataplane or ("envoy", "traefik"):
        if binaries.find(name):
            measure(name, args.quick)
        else:
            print(f"{name}: not installed, skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
