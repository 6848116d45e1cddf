"""What one proxy (a gateway) and two proxies (client + server sidecar) add, on this machine.

Runs :func:`gwlib.latency.hops.run` — the full setting by default: 20, 200 and 2,000
requests/s, open loop, 3 repeats of 15 / 5 / 3 s per path and rate (about 5 minutes) — and
prints:

* the machine and the proxies (versions, workers, CPUs, load average);
* proof of the paths: one probe per path (the echo's report of which Service answered and
  which hop headers arrived) and the per-run request counts at the client, each Envoy and
  the echo;
* per rate and path: p50 / p90 / p99 / max from the actual send time, the overhead vs
  ``direct`` measured in the same run with its 95 % bootstrap interval, and the ratio to
  direct;
* the same from the intended send time (wrk2-style) with the generator's send lag, which
  is inside every such latency;
* the caveats (one machine, loopback, no mTLS, Envoy standing in for linkerd2-proxy, ...).

    python benchmarks/mesh_overhead.py [--quick] [--scale 2] [--repeats 5] [--csv out.csv] [--plot out.png]

Everything binds 127.0.0.1; every process is stopped at the end. Nothing here asserts on
time; tests never do.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from gwlib.latency import hops  # noqa: E402


def _fmt_table(res: hops.HopResults, measure: str) -> pd.DataFrame:
    ps = (50, 90, 99, 100)
    ov = res.overhead((50, 99), measure)
    rows = []
    for rate in res.rates:
        for config in res.configs:
            r = res.result(config, rate, measure)
            row = {"rate": f"{rate:g}", "path": config, "hops": hops.CONFIGS[config].hops, "requests": r.requests,
                   "errors": r.errors}
            for p in ps:
                row["max" if p >= 100 else f"p{p:g}"] = f"{r.percentile(p):.3f}"
            for p in (50, 99):
                sel = ov[(ov.rate == rate) & (ov.config == config) & (ov.percentile == p)]
                if len(sel):
                    s = sel.iloc[0]
                    row[f"+p{p} [95% CI]"] = f"{s.overhead_ms:+.3f} [{s.low_ms:+.3f}, {s.high_ms:+.3f}]"
                    row[f"x p{p}"] = f"{s.ratio:.2f}"
                else:
                    row[f"+p{p} [95% CI]"] = "(baseline)"
                    row[f"x p{p}"] = "1.00"
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the notebook's setting (~6 s of traffic)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every run's duration")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--rates", default=None, help="comma-separated requests/s (default 20,200,2000)")
    ap.add_argument("--configs", default=",".join(hops.CONFIGS), help="paths to measure (direct is always in)")
    ap.add_argument("--connections", type=int, default=None)
    ap.add_argument("--gateway-workers", type=int, default=2)
    ap.add_argument("--sidecar-workers", type=int, default=1)
    ap.add_argument("--csv", default=None, help="write the tidy table (both measures) here")
    ap.add_argument("--plot", default=None, help="save the plot beside the published studies here (PNG)")
    a = ap.parse_args(argv)

    base = hops.QUICK if a.quick else hops.FULL
    s = base.scaled(a.scale) if a.scale != 1.0 else base
    if a.repeats is not None or a.connections is not None:
        s = hops.Settings(s.rates, s.durations, a.repeats or s.repeats, a.connections or s.connections,
                          s.warmup_s, s.n_boot, s.timeout)
    rates = [float(r) for r in a.rates.split(",")] if a.rates else None
    per_path = sum(s.duration(r) for r in (rates or s.rates)) * s.repeats
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    print(f"gwlib hop-overhead benchmark: {len(set(configs) | {'direct'})} paths x rates "
          f"{', '.join(f'{r:g}' for r in (rates or s.rates))} req/s, {s.repeats} repeat(s), "
          f"{s.connections} connections, open loop; ~{per_path * len(set(configs) | {'direct'}) / 60:.1f} min "
          f"of traffic", flush=True)

    res = hops.run(settings=s, configs=configs, rates=rates, progress=lambda line: print("  " + line, flush=True),
                   gateway_workers=a.gateway_workers, sidecar_workers=a.sidecar_workers)

    env = res.environment
    print()
    print(f"machine: {env['cpus']} CPUs, {env['platform']}, Python {env['python']}; load average (1 min) "
          f"{env['loadavg_1m_start']:.2f} at the start, {env['loadavg_1m']:.2f} at the end (anything else "
          f"running adds noise to every path)")
    print(f"proxies: Envoy {env['envoy']} (gateway --concurrency {env['gateway_workers']}, sidecars "
          f"--concurrency {env['sidecar_workers']}), Traefik {env['traefik']} (GOMAXPROCS = all CPUs)")
    print(f"wall time {res.wall_s:.0f} s")
    if res.findings:
        print("data-plane findings:", *[f"  {f}" for f in res.findings], sep="\n")

    print("\nPaths (one probe each: which Service answered, which hop headers it received)")
    print(res.verification[["config", "hops", "path", "backend", "hop_headers", "ok"]].to_string(index=False))
    paths = res.paths()
    bad = paths[~paths.ok]
    print(f"request counts per run (client = echo = every Envoy on the path): "
          f"{'all ' + str(len(paths)) + ' runs agree' if bad.empty else 'MISMATCH'}")
    if not bad.empty:
        print(bad.to_string(index=False))

    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print("\nLatency from the actual send time (ms); overhead = path - direct at the same rate, same run")
        print(_fmt_table(res, "actual").to_string(index=False))
        print("\nLatency from the intended send time (ms, wrk2-style: includes the generator's send lag)")
        print(_fmt_table(res, "intended").to_string(index=False))
        lag = res.send_lag().groupby(["rate", "config"], sort=False)[["lag_p50_ms", "lag_p99_ms"]].median()
        print("\nGenerator send lag (actual - intended send time, ms; median over repeats)")
        print(lag.round(3).to_string())

    print("\nCaveats")
    print(res.caveats())

    if a.csv:
        both = pd.concat([res.frame("actual"), res.frame("intended")], ignore_index=True)
        both.to_csv(a.csv, index=False)
        print(f"\ntidy table written to {a.csv}")
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        fig = res.plot()
        fig.savefig(a.plot, dpi=110)
        print(f"plot written to {a.plot}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
