"""Speed of progressive delivery in the lab, and of weighted-pick simulation.

1. **A 10-step lab rollout with 2,000 requests per step** (the talk's Rollout in
   ``data/rollouts/talk``: setWeight / pause / analysis, Linkerd success-rate and p99 queries)
   through a real proxy — target ≤ 15 s. The baseline is the same 20,000 requests sent through
   the same lab with nothing else going on, so the ratio is the engine's cost on top of the
   traffic itself (route rewrites, proxy reloads, statistics, analysis).
2. **10⁶ weighted picks** — Envoy's random choice and Traefik's round robin
   (``gwlib.canary.picks``) — target ≤ 1 s; the baseline is drawing 10⁶ uniform numbers with
   numpy.

    python benchmarks/rollout.py [--dataplane envoy|traefik] [--requests-per-step 2000]

Prints times and ratios to the baselines measured in the same run. Nothing here asserts on
time; tests never do.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import gwlib  # noqa: E402
from gwlib import canary  # noqa: E402
from gwlib.rollout import RolloutRun  # noqa: E402

TALK = ROOT / "data" / "rollouts" / "talk"


def lab_rollout(dataplane: str, per_step: int, concurrency: int) -> dict:
    with gwlib.connect("lab", dataplane=dataplane) as lab:
        lab.apply(TALK)
        run = RolloutRun(lab, seed=0, requests_per_step=per_step, concurrency=concurrency)
        steps = len(run.spec.steps)
        req = run.request
        # baseline: the same number of requests, same concurrency, no rollout
        from concurrent.futures import ThreadPoolExecutor

        def traffic(n: int) -> float:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(lambda _: lab.request(req), range(n)))
            return time.perf_counter() - t0
        traffic(500)                                    # warm up connections and the proxy
        base = min(traffic(per_step * steps), traffic(per_step * steps))
        t0 = time.perf_counter()
        tl = run.run()
        took = time.perf_counter() - t0
    return {"steps": steps, "requests": sum(s.requests for s in tl.steps), "phase": tl.phase, "seconds": took,
            "baseline": base, "logical": tl.steps[-1].end}


def reference_rollout(per_step: int) -> float:
    conn = gwlib.connect("reference")
    conn.apply(TALK)
    t0 = time.perf_counter()
    RolloutRun(conn, seed=0, requests_per_step=per_step).run()
    return time.perf_counter() - t0


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataplane", choices=("envoy", "traefik"), default="envoy")
    ap.add_argument("--requests-per-step", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args(argv)

    r = lab_rollout(args.dataplane, args.requests_per_step, args.concurrency)
    ref = reference_rollout(args.requests_per_step)
    print(f"lab rollout ({args.dataplane}): {r['steps']} steps x {args.requests_per_step} requests = "
          f"{r['requests']} requests, {r['logical'] / 60:.1f} simulated minutes -> {r['phase']}")
    print(f"  rollout            {r['seconds']:7.2f} s   (target <= 15 s)   ratio to baseline {r['seconds'] / r['baseline']:.2f}")
    print(f"  baseline traffic   {r['baseline']:7.2f} s   ({r['requests'] / r['baseline']:,.0f} requests/s, no rollout)")
    print(f"  reference mode     {ref:7.2f} s   ratio to baseline {ref / r['baseline']:.2f}")

    n = 1_000_000
    base = timed(lambda: np.random.default_rng(0).random(n))
    rnd = timed(lambda: canary.picks([80, 20], n, "random", seed=0))
    wrr = timed(lambda: canary.picks([80, 20], n, "wrr"))
    std = timed(lambda: random.Random(0).choices([0, 1], weights=[80, 20], k=n), repeat=1)
    print("10^6 weighted picks (80/20):")
    print(f"  numpy uniforms     {base * 1000:8.1f} ms  baseline")
    print(f"  envoy (random)     {rnd * 1000:8.1f} ms  (target <= 1 s)   ratio {rnd / base:.1f}")
    print(f"  traefik (wrr)      {wrr * 1000:8.1f} ms  (target <= 1 s)   ratio {wrr / base:.1f}")
    print(f"  random.choices     {std * 1000:8.1f} ms  ratio {std / base:.1f} (stdlib, for comparison)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
