"""How well gwlib.traffic keeps a constant rate: achieved rate vs target, and the send lag.

Against a local echo target (gwlib's own minimal HTTP/1.1 server, in a child process so
that it does not share the GIL with the load generator; or any loopback ``--target``) at
200 and 2,000 requests/s, open loop, prints:

* the achieved rate as a ratio of the target (the goal: within 1 %);
* the p50/p99/max lag between each request's intended and actual send time — the
  generator's own timing error, which an open-loop measurement includes in every latency;
* the p50 latency; and, if wrk2 is installed, the ratio of gwlib's p50 to wrk2's against
  the same target at the same rate. Plain ``wrk`` (Debian's package) has no rate control,
  so against it both run closed loop at full speed with the same connections.

Each rate runs twice: with the event loop's timers (``loop``, ~1 ms resolution, the
default) and with ``precise=True`` (a busy wait for the last 1.5 ms before each send).

    python benchmarks/loadgen.py [--seconds 5] [--target 127.0.0.1:PORT]

Nothing here asserts on time; tests never do.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gwlib import traffic  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rates", default="200,2000")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--target", default=None, help="an existing loopback target (default: start one)")
    a = ap.parse_args(argv)
    rates = [float(r) for r in a.rates.split(",")]
    kind = traffic.wrk_available()
    with contextlib.ExitStack() as stack:
        target = a.target or stack.enter_context(traffic.local_server(process=True)).address
        print(f"target {target}, {a.seconds:g} s per rate, {a.connections} connections, open loop")
        print("times in ms; lag = actual - intended send time (the generator's own timing error)")
        print(f"{'rate':>6} {'timer':>8} {'achieved':>9} {'ratio':>7} {'lag p50':>8} {'lag p99':>8} {'lag max':>8} "
              f"{'p50':>7} {'p99':>7} {'errors':>6}" + ("  gwlib p50 / wrk2 p50" if kind == "wrk2" else ""))
        for rate in rates:
            for precise in (False, True):
                wrk2_col = kind == "wrk2"
                traffic.open_loop(target, rate=rate, duration=min(1.0, a.seconds), connections=a.connections)
                r = traffic.open_loop(target, rate=rate, duration=a.seconds, connections=a.connections,
                                      precise=precise)
                lag = r.send_lag.percentiles([50, 99, 100]) if r.send_lag else [float("nan")] * 3
                p50, p99 = r.histogram.percentiles([50, 99]) if r.histogram else (float("nan"),) * 2
                line = (f"{rate:>6g} {'precise' if precise else 'loop':>8} {r.achieved_rate or 0:>9.1f} "
                        f"{(r.achieved_rate or 0) / rate:>7.4f} {lag[0]:>8.3f} {lag[1]:>8.3f} {lag[2]:>8.3f} "
                        f"{p50:>7.3f} {p99:>7.3f} {r.errors:>6}")
                if wrk2_col:
                    w = traffic.wrk(target, rate=rate, duration=a.seconds, connections=a.connections,
                                    threads=min(2, a.connections))
                    line += f"  {p50 / w.percentile(50):.2f} (wrk2 p50 {w.percentile(50):.3f})"
                print(line)
        if kind == "wrk":
            g = traffic.closed_loop(target, connections=a.connections, duration=a.seconds)
            w = traffic.wrk(target, duration=a.seconds, connections=a.connections, threads=min(2, a.connections))
            gp, wp = g.histogram.percentile(50), w.percentile(50)
            print(f"closed loop at full speed, {a.connections} connections: gwlib {g.achieved_rate:.0f} req/s "
                  f"p50 {gp:.3f} ms; wrk {w.achieved_rate:.0f} req/s p50 {wp:.3f} ms; p50 ratio gwlib/wrk "
                  f"{gp / wp:.2f}")
        elif kind is None:
            print("wrk/wrk2 not installed: no comparison with wrk")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
