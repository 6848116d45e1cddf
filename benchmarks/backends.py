"""Requests/s that one echo endpoint serves to keep-alive clients, as ratios to bare
baselines measured in the same run:

* ``asyncio``: a minimal asyncio.Protocol server answering a fixed 200 (no parsing beyond
  the end of the header block): the ceiling for a Python asyncio server;
* ``http.server``: the standard library's ThreadingHTTPServer (HTTP/1.1 keep-alive)
  answering a fixed JSON body.

Every server runs in its own supervised process; the client is another process (one
keep-alive connection, one request in flight; and 16 connections through asyncio), so
server and client never share a GIL. Run: ``.venv/bin/python benchmarks/backends.py``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gwlib.backends import EchoEndpoint, EchoFleet  # noqa: E402
from gwlib.processes import Supervisor, TcpProbe, free_port  # noqa: E402

BARE_ASYNCIO = textwrap.dedent("""
    import asyncio, sys
    BODY = b'{"path":"/bench","service":"bare"}'
    RESP = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(BODY), BODY)
    class P(asyncio.Protocol):
        def connection_made(self, t): self.t = t; self.buf = b""
        def data_received(self, data):
            self.buf += data
            while True:
                i = self.buf.find(b"\\r\\n\\r\\n")
                if i < 0: return
                self.buf = self.buf[i + 4:]
                self.t.write(RESP)
    async def main():
        srv = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
        await srv.serve_forever()
    asyncio.run(main())
""")

HTTP_SERVER = textwrap.dedent("""
    import http.server, sys
    BODY = b'{"path":"/bench","service":"http.server"}'
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else 40 ms Nagle/delayed-ACK stalls
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        def log_message(self, *a): pass
    class S(http.server.ThreadingHTTPServer):
        daemon_threads = True
    S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")

CLIENT = textwrap.dedent("""
    import asyncio, json, socket, sys, time
    port, seconds, conns = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    REQ = b"GET /bench HTTP/1.1\\r\\nHost: bench.example.com\\r\\nX-Env: canary\\r\\nAccept: */*\\r\\n\\r\\n"

    def read_response(s, buf):
        while True:
            i = buf.find(b"\\r\\n\\r\\n")
            if i >= 0:
                head = buf[:i].lower()
                j = head.find(b"content-length:")
                n = int(head[j + 15:head.find(b"\\r\\n", j) if head.find(b"\\r\\n", j) > 0 else None]) if j >= 0 else 0
                if len(buf) >= i + 4 + n:
                    assert buf[9:12] == b"200", buf[:40]
                    return buf[i + 4 + n:]
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk

    def sequential():
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        for _ in range(200):  # warm-up
            s.sendall(REQ); buf = read_response(s, buf)
        n, t0 = 0, time.perf_counter()
        end = t0 + seconds
        while True:
            for _ in range(50):
                s.sendall(REQ); buf = read_response(s, buf)
            n += 50
            if time.perf_counter() >= end:
                break
        return n / (time.perf_counter() - t0)

    async def concurrent():
        count = [0]
        stop = [False]
        async def worker():
            r, w = await asyncio.open_connection("127.0.0.1", port)
            while not stop[0]:
                w.write(REQ)
                head = await r.readuntil(b"\\r\\n\\r\\n")
                h = head.lower()
                j = h.find(b"content-length:")
                n = int(h[j + 15:h.find(b"\\r\\n", j)]) if j >= 0 else 0
                await r.readexactly(n)
                count[0] += 1
            w.close()
        tasks = [asyncio.create_task(worker()) for _ in range(conns)]
        await asyncio.sleep(0.2)
        c0, t0 = count[0], time.perf_counter()
        await asyncio.sleep(seconds)
        rate = (count[0] - c0) / (time.perf_counter() - t0)
        stop[0] = True
        await asyncio.gather(*tasks, return_exceptions=True)
        return rate

    print(json.dumps(sequential() if conns == 1 else asyncio.run(concurrent())))
""")


def measure(port: int, seconds: float, conns: int) -> float:
    out = subprocess.run([sys.executable, "-c", CLIENT, str(port), str(seconds), str(conns)],
                         capture_output=True, text=True, timeout=seconds + 30, check=True)
    return float(json.loads(out.stdout))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per case and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is shown)")
    args = ap.parse_args()
    with Supervisor("bench") as sup:
        fleet = EchoFleet(sup)
        ep = EchoEndpoint("default", "echo", 8080, "http", version="v1")
        echo_port = fleet.ensure([ep])[ep.key]
        servers = {"echo endpoint": echo_port}
        for name, code in (("bare asyncio", BARE_ASYNCIO), ("http.server", HTTP_SERVER)):
            port = free_port()
            sup.start(name.replace(" ", "-").replace(".", "-"), [sys.executable, "-c", code, str(port)],
                      ready=TcpProbe(port))
            servers[name] = port
        rows = []
        for conns in (1, 16):
            # interleave the servers round by round: a noisy neighbour hits all of them alike
            samples: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, port in servers.items():
                    samples[name].append(measure(port, args.seconds, conns))
            rows.append((conns, {name: statistics.median(v) for name, v in samples.items()}))
    print(f"echo backend throughput, keep-alive HTTP/1.1, median of {args.rounds} interleaved rounds "
          f"of {args.seconds:g}s (client and each server in their own processes)")
    print(f"{'connections':>11}  {'echo req/s':>10}  {'asyncio req/s':>13}  {'http.server req/s':>17}  "
          f"{'echo/asyncio':>12}  {'echo/http.server':>16}")
    for conns, r in rows:
        e, a, h = r["echo endpoint"], r["bare asyncio"], r["http.server"]
        print(f"{conns:>11}  {e:>10.0f}  {a:>13.0f}  {h:>17.0f}  {e / a:>12.2f}  {e / h:>16.2f}")


if __name__ == "__main__":
    main()
