"""Load generation on 127.0.0.1: open loop (constant rate) and closed loop, HTTP/1.1 keep-alive.

    res = gwlib.traffic.open_loop("127.0.0.1:8080", rate=200, duration=5)
    res.histogram.percentile(99)          # latency from the *intended* send time, ms
    res.to_frame()                        # the tidy schema of gwlib.latency
    res = gwlib.traffic.closed_loop("127.0.0.1:8080", connections=4, requests=2000)

**Open loop** (what wrk2 does): request *i* is due at ``start + i/rate`` whatever happened
before. It goes out on the first idle keep-alive connection; if all of them are busy it
waits, and that wait counts. Latency is measured from the intended send time, so a stalled
server shows up in every request that should have been sent during the stall — no
coordinated omission. The result also carries the latency from the *actual* send time
(``uncorrected``, what a naive tool reports) and the send lag (actual − intended).

**Closed loop** (what wrk, hey, oha and k6's VU executors do): each connection sends, waits
for the answer, then sends again (optionally paced to a rate, without catching up).
Latency is measured from the actual send. A stalled server makes the client wait too, so
the requests that *would* have been slow are never sent: the tail is under-reported.

Targets: ``"127.0.0.1:8080"``, ``"http://127.0.0.1:8080/path"``, ``("127.0.0.1", 8080)`` or a
port number — a proxy's listener or an echo backend. Only loopback addresses are allowed.
Every run is bounded by ``duration`` (seconds) and ``requests`` and stops by itself; the
client runs its own event loop in a thread, so it works inside Jupyter too.

:func:`local_server` starts a tiny HTTP/1.1 server on 127.0.0.1 (optionally with a fixed
delay or a *stall*) for tests and demos; :func:`wrk` runs wrk/wrk2 if installed.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .latency.histogram import Histogram
from .latency.result import Result

__all__ = ["TrafficResult", "open_loop", "closed_loop", "run", "local_server", "LocalServer", "wrk",
           "parse_target"]

#: Upper bounds of one run (the workplace rule: every load loop is bounded in count and time).
MAX_DURATION_S = 600.0
MAX_REQUESTS = 5_000_000
REPORT_PERCENTILES = (50, 75, 90, 99, 99.9, 99.99, 100)


# -- targets -----------------------------------------------------------------------------------

def parse_target(target: str | int | tuple[str, int], path: str | None = None) -> tuple[str, int, str]:
    """``(host, port, path)`` of a loopback target; anything not on 127.0.0.0/8 or ::1 is refused."""
    if isinstance(target, int):
        host, port, p = "127.0.0.1", target, "/"
    elif isinstance(target, tuple):
        host, port = target
        p = "/"
    elif isinstance(target, str):
        s = target if "://" in target else "http://" + target
        u = urlsplit(s)
        if u.scheme != "http":
            raise ValueError(f"only plain http:// targets are supported, got {target!r}")
        if u.hostname is None or u.port is None:
            raise ValueError(f"target needs a host and a port, e.g. 127.0.0.1:8080 (got {target!r})")
        host, port = u.hostname, u.port
        p = (u.path or "/") + (f"?{u.query}" if u.query else "")
    else:
        raise TypeError(f"unsupported target {target!r}")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"target host must be a loopback IP address (127.0.0.1), got {host!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"gwlib.traffic only sends to loopback addresses (127.0.0.0/8, ::1), not {host}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port}")
    return str(ip), int(port), path or p


# -- results -----------------------------------------------------------------------------------

@dataclass(repr=False)
class TrafficResult(Result):
    """A :class:`~gwlib.latency.Result` with what only a local generator can know.

    ``histogram`` is the latency a user would see (open loop: from the intended send time);
    ``uncorrected`` is from the actual send time; ``send_lag`` is actual − intended send
    time (open loop only); ``status_codes`` counts answers; ``error_kinds`` counts failures.
    """

    uncorrected: Histogram | None = None
    send_lag: Histogram | None = None
    status_codes: dict[int, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    sent: int = 0

    def summary(self) -> dict[str, Any]:
        out = {"mode": self.mode, "target": self.target, "rate": self.rate, "achieved_rate": self.achieved_rate,
               "requests": self.requests, "errors": self.errors, "duration_s": self.duration_s}
        if self.histogram is not None and self.histogram.count:
            out.update({f"{'max' if p >= 100 else f'p{p:g}'}_ms": v
                        for p, v in zip((50, 99, 100), self.histogram.percentiles([50, 99, 100]))})
        if self.send_lag is not None and self.send_lag.count:
            out["send_lag_p99_ms"] = self.send_lag.percentile(99)
        return out

    def __repr__(self) -> str:
        s = self.summary()
        bits = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()
                         if v is not None)
        return f"TrafficResult({bits})"


# -- the HTTP/1.1 client -----------------------------------------------------------------------

class _Closed(Exception):
    pass


class _Conn:
    """One keep-alive HTTP/1.1 connection (plain asyncio streams, no pipelining)."""

    __slots__ = ("host", "port", "reader", "writer")

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        self.reader = self.writer = None

    async def request(self, payload: bytes) -> int:
        """Send one request, read the whole response; returns the status code."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(payload)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            self.close()
            raise _Closed("connection closed before a response") from exc
        status_line, _, rest = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            self.close()
            raise _Closed(f"not an HTTP/1.x response: {status_line[:40]!r}")
        status = int(parts[1])
        length = None
        chunked = close = False
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            n = name.strip().lower()
            if n == b"content-length":
                length = int(value.strip())
            elif n == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif n == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                await self.reader.readexactly(size + 2)
        elif length is not None:
            if length:
                await self.reader.readexactly(length)
        elif status >= 200 and status not in (204, 304):
            await self.reader.read()       # body until the server closes
            close = True
        if close or parts[0] == b"HTTP/1.0":
            self.close()
        return status


def _payload(host: str, port: int, path: str, method: str, headers: dict[str, str] | None,
             body: bytes | str | None, host_header: str | None) -> bytes:
    if isinstance(body, str):
        body = body.encode()
    hdrs = {"Host": host_header or f"{host}:{port}", "User-Agent": "gwlib-traffic"}
    for k, v in (headers or {}).items():
        hdrs = {kk: vv for kk, vv in hdrs.items() if kk.lower() != k.lower()}
        hdrs[k] = v
    if body:
        hdrs["Content-Length"] = str(len(body))
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


# -- progress ----------------------------------------------------------------------------------

def _progress_printer(total: int, stream=None) -> Callable[[int], None]:
    """A small text progress bar on stderr (no dependency), updated at most 5 times a second."""
    stream = stream or sys.stderr
    state = {"t": 0.0}

    def update(done: int) -> None:
        now = time.monotonic()
        if done < total and now - state["t"] < 0.2:
            return
        state["t"] = now
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        stream.write(f"\r[{bar:<30}] {done}/{total} requests")
        if done >= total:
            stream.write("\n")
        stream.flush()
    return update


# -- the engines -------------------------------------------------------------------------------

@dataclass
class _Plan:
    host: str
    port: int
    payload: bytes
    connections: int
    n: int
    duration: float
    timeout: float
    rate: float | None
    open: bool
    arrivals: str
    seed: int | None
    warmup: int
    progress: Callable[[int], None] | None
    precise: bool = False


@dataclass
class _Record:
    intended: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    status: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    n_sent: int = 0
    start: float = 0.0
    end: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _run_in_thread(coro_fn: Callable[[], Any]) -> Any:
    """Run ``coro_fn()`` on a fresh event loop in its own thread (safe inside Jupyter)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="gwlib-traffic", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _open_conns(plan: _Plan) -> list[_Conn]:
    conns = [_Conn(plan.host, plan.port) for _ in range(plan.connections)]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.open() for c in conns)), plan.timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        for c in conns:
            c.close()
        raise ConnectionError(f"cannot connect to {plan.host}:{plan.port}: {exc or 'timeout'}") from None
    # warm up each connection (not recorded)
    for c in conns:
        for _ in range(plan.warmup):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(plan.timeout):
                    await c.request(plan.payload)
    return conns


async def _one(conn: _Conn, plan: _Plan, rec: _Record, intended: float) -> None:
    clock = time.perf_counter
    t_send = clock()
    try:
        async with asyncio.timeout(plan.timeout):
            status = await conn.request(plan.payload)
    except TimeoutError:
        conn.close()
        rec.error("timeout")
        return
    except (_Closed, ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ValueError) as exc:
        conn.close()
        rec.error(type(exc).__name__ if not isinstance(exc, _Closed) else "closed")
        return
    t_done = clock()
    rec.status[status] = rec.status.get(status, 0) + 1
    rec.intended.append(intended)
    rec.sent.append(t_send)
    rec.done.append(t_done)


async def _open_loop_async(plan: _Plan) -> _Record:
    conns = await _open_conns(plan)
    rec = _Record()
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    clock = time.perf_counter
    assert plan.rate
    if plan.arrivals == "poisson":
        # a Poisson process over the run's duration: the count itself is random (seeded)
        rng = np.random.default_rng(plan.seed)
        offsets = np.cumsum(rng.exponential(1.0 / plan.rate, int(plan.n * 1.5) + 50))
        offsets = offsets[offsets < plan.duration][: plan.n]
        plan.n = int(offsets.size)
    else:
        offsets = np.arange(plan.n) / plan.rate
    offsets = offsets.tolist()
    completed = [0]
    spin = 0.0015 if plan.precise else 0.0

    async def worker(conn: _Conn) -> None:
        while True:
            intended = await queue.get()
            if intended is None:
                return
            await _one(conn, plan, rec, intended)
            completed[0] += 1
            if plan.progress is not None:
                plan.progress(completed[0])

    workers = [asyncio.create_task(worker(c)) for c in conns]
    start = clock() + 0.005
    rec.start = start
    deadline = start + plan.duration
    i = 0
    while i < plan.n:
        now = clock()
        while i < plan.n and start + offsets[i] <= now:
            queue.put_nowait(start + offsets[i])
            i += 1
        if i < plan.n:
            due = start + offsets[i]
            if due > deadline:
                break
            wait = due - clock()
            if wait > spin:
                await asyncio.sleep(wait - spin)   # the loop's timers have ~1 ms resolution...
            else:
                await asyncio.sleep(0)             # ...so the last stretch is a busy wait (precise=True)
    rec.n_sent = i
    for _ in workers:
        queue.put_nowait(None)
    # let everything in flight finish, but never wait past the deadline + timeout
    done, pending = await asyncio.wait(workers, timeout=max(0.0, deadline + plan.timeout - clock()) + 0.05)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    left = 0
    while not queue.empty():
        if queue.get_nowait() is not None:
            left += 1
    if left:
        rec.errors["not sent before the deadline"] = left
    rec.end = clock()
    for c in conns:
        c.close()
    return rec


async def _closed_loop_async(plan: _Plan) -> _Record:
    conns = await _open_conns(plan)
    rec = _Record()
    clock = time.perf_counter
    start = clock()
    rec.start = start
    deadline = start + plan.duration
    budget = [plan.n]
    interval = plan.connections / plan.rate if plan.rate else 0.0

    async def worker(k: int, conn: _Conn) -> None:
        next_t = start + (interval * k / plan.connections if interval else 0.0)
        while budget[0] > 0:
            now = clock()
            if interval and next_t > now:
                await asyncio.sleep(next_t - now)
                now = clock()
            if now >= deadline:
                return
            budget[0] -= 1
            rec.n_sent += 1
            await _one(conn, plan, rec, clock())
            if plan.progress is not None:
                plan.progress(plan.n - budget[0])
            if interval:   # pace, but never catch up after a slow answer
                next_t = max(next_t + interval, clock())

    tasks = [asyncio.create_task(worker(k, c)) for k, c in enumerate(conns)]
    done, pending = await asyncio.wait(tasks, timeout=plan.duration + plan.timeout + 0.05)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    rec.end = clock()
    for c in conns:
        c.close()
    return rec


def _result(plan: _Plan, rec: _Record, target: str, label: str | None) -> TrafficResult:
    intended = np.asarray(rec.intended)
    sent = np.asarray(rec.sent)
    done = np.asarray(rec.done)
    h = u = lag = None
    if done.size:
        u = Histogram.from_values(np.maximum(done - sent, 0) * 1e3)
        if plan.open:
            h = Histogram.from_values(np.maximum(done - intended, 0) * 1e3)
            lag = Histogram.from_values(np.maximum(sent - intended, 0) * 1e3)
        else:
            h = u
    completed = int(done.size)
    errors = sum(rec.errors.values()) + sum(v for k, v in rec.status.items() if k >= 400)
    achieved = None
    if plan.open and completed > 1:
        # throughput between the first and the last answer (the schedule's own rate when on pace)
        span = float(done.max() - done.min())
        achieved = (completed - 1) / span if span > 0 else None
    elif completed:
        span = rec.end - rec.start
        achieved = completed / span if span > 0 else None
    percentiles = {} if h is None else dict(zip(map(float, REPORT_PERCENTILES),
                                                map(float, h.percentiles(REPORT_PERCENTILES))))
    return TrafficResult(tool="gwlib", percentiles=percentiles, histogram=h, target=target, rate=plan.rate,
                         connections=plan.connections, mode="open" if plan.open else "closed",
                         corrected=plan.open, requests=completed, errors=errors,
                         duration_s=rec.end - rec.start, achieved_rate=achieved, run=label,
                         uncorrected=u, send_lag=lag, status_codes=dict(rec.status), error_kinds=dict(rec.errors),
                         sent=rec.n_sent,
                         meta={"arrivals": plan.arrivals if plan.open else None, "timeout_s": plan.timeout})


def run(target: str | int | tuple[str, int], *, rate: float | None = None, duration: float = 5.0,
        requests: int | None = None, connections: int = 8, mode: str | None = None, path: str | None = None,
        method: str = "GET", host: str | None = None, headers: dict[str, str] | None = None,
        body: bytes | str | None = None, timeout: float = 5.0, warmup: int = 1, arrivals: str = "constant",
        seed: int | None = 0, progress: bool | Callable[[int], None] = False, label: str | None = None,
        precise: bool = False) -> TrafficResult:
    """Send load to a loopback HTTP target and measure latency (see the module docstring).

    ``mode`` is ``"open"`` (needs ``rate``, the default when a rate is given) or ``"closed"``.
    ``requests`` caps the count (open loop: default ``rate * duration``); ``duration`` caps
    the time (seconds). ``host`` sets the Host header (virtual hosts behind a gateway).
    ``arrivals`` is ``"constant"`` (wrk2) or ``"poisson"`` (seeded). ``progress=True`` draws
    a bar on stderr, or pass a callable taking the number of completed requests.
    ``precise=True`` busy-waits the last 1.5 ms before each send (the event loop's timers
    are only good to ~1 ms): a smaller send lag for more CPU.
    """
    h, port, p = parse_target(target, path)
    mode = mode or ("open" if rate else "closed")
    if mode not in ("open", "closed"):
        raise ValueError("mode must be 'open' or 'closed'")
    if mode == "open" and not rate:
        raise ValueError("an open-loop run needs a rate (requests per second)")
    if rate is not None and not (0 < rate <= 100_000):
        raise ValueError("rate must be between 0 and 100,000 requests/s")
    if not 0 < duration <= MAX_DURATION_S:
        raise ValueError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds")
    if not 1 <= connections <= 1024:
        raise ValueError("connections must be between 1 and 1024")
    if arrivals not in ("constant", "poisson"):
        raise ValueError("arrivals must be 'constant' or 'poisson'")
    if mode == "open":
        n = int(round(rate * duration)) if requests is None else min(int(requests), int(math.ceil(rate * duration)))
    else:
        n = MAX_REQUESTS if requests is None else int(requests)
    if not 1 <= n <= MAX_REQUESTS:
        raise ValueError(f"requests must be between 1 and {MAX_REQUESTS:,}")
    prog = progress if callable(progress) else None
    if progress is True and (mode == "open" or requests is not None):
        prog = _progress_printer(n)
    plan = _Plan(host=h, port=port, payload=_payload(h, port, p, method, headers, body, host),
                 connections=connections, n=n, duration=float(duration), timeout=float(timeout), rate=rate,
                 open=(mode == "open"), arrivals=arrivals, seed=seed, warmup=max(0, int(warmup)), progress=prog,
                 precise=precise)
    engine = _open_loop_async if plan.open else _closed_loop_async
    rec = _run_in_thread(lambda: engine(plan))
    return _result(plan, rec, f"http://{h}:{port}{p}", label)


def open_loop(target: str | int | tuple[str, int], rate: float, duration: float = 5.0, **kw: Any) -> TrafficResult:
    """Constant-rate load; latency measured from each request's intended send time."""
    return run(target, rate=rate, duration=duration, mode="open", **kw)


def closed_loop(target: str | int | tuple[str, int], connections: int = 8, requests: int | None = None,
                duration: float = 5.0, rate: float | None = None, **kw: Any) -> TrafficResult:
    """Each connection sends, waits for the answer, sends again (paced to ``rate`` if given)."""
    return run(target, rate=rate, duration=duration, requests=requests, connections=connections, mode="closed",
               **kw)


# -- a tiny local server for tests and demos ---------------------------------------------------

class _ServerState:
    def __init__(self, delay_ms: float, stall: tuple[float, float] | None, body: bytes):
        self.delay = delay_ms / 1e3
        self.stall = stall
        self.body = body
        self.first: float | None = None
        self.requests = 0


class _ServerProtocol(asyncio.Protocol):
    def __init__(self, state: _ServerState):
        self.state = state
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next()

    def _next(self) -> None:
        if self.busy:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536 and self.transport:
                self.transport.close()
            return
        head = self.buf[:end]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                with contextlib.suppress(ValueError):
                    length = int(value.strip())
        if len(self.buf) < end + 4 + length:
            return
        self.buf = self.buf[end + 4 + length:]
        st = self.state
        now = time.perf_counter()
        if st.first is None:
            st.first = now
        st.requests += 1
        wait = st.delay
        if st.stall is not None:
            s0 = st.first + st.stall[0]
            s1 = s0 + st.stall[1]
            if s0 <= now < s1:
                wait = max(wait, s1 - now)   # frozen: answer when the stall ends
        self.busy = True
        if wait > 0:
            self.loop.call_later(wait, self._reply)
        else:
            self._reply()

    def _reply(self) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        b = self.state.body
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                             + str(len(b)).encode() + b"\r\n\r\n" + b)
        self._next()

    def connection_lost(self, exc):  # type: ignore[override]
        self.transport = None


class LocalServer:
    """A minimal HTTP/1.1 keep-alive server on 127.0.0.1 (``with local_server() as srv``).

    Answers every request ``200 ok``, after ``delay_ms``; with ``stall=(after_s, for_s)``
    it freezes for ``for_s`` seconds starting ``after_s`` seconds after the first request
    (every answer due in that window is held until it ends, like a GC pause or a stopped
    process). In-process (a thread) by default; ``process=True`` runs it in a child process
    so that it does not share the GIL with the load generator (benchmarks).
    """

    def __init__(self, delay_ms: float = 0.0, stall: tuple[float, float] | None = None,
                 body: bytes = b"ok", process: bool = False):
        self.delay_ms, self.stall, self.body, self.process = delay_ms, stall, body, process
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._proc: subprocess.Popen | None = None
        self._state: _ServerState | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def requests(self) -> int:
        """How many requests the (in-process) server answered or is holding."""
        return self._state.requests if self._state else 0

    def start(self) -> LocalServer:
        if self.process:
            return self._start_process()
        ready = threading.Event()
        self._state = _ServerState(self.delay_ms, self.stall, self.body)

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            state = self._state
            self._server = await self._loop.create_server(lambda: _ServerProtocol(state), "127.0.0.1", 0,
                                                          backlog=1024)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            async with self._server:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._server.serve_forever()

        def target() -> None:
            with contextlib.suppress(Exception):
                asyncio.run(main())
            ready.set()

        self._thread = threading.Thread(target=target, name="gwlib-local-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if self.port is None:
            raise RuntimeError("the local server did not start")
        return self

    def _start_process(self) -> LocalServer:
        args = [sys.executable, "-m", "gwlib.traffic", "serve", "--delay-ms", str(self.delay_ms)]
        if self.stall:
            args += ["--stall", f"{self.stall[0]},{self.stall[1]}"]
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        try:
            self.port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            self.stop()
            raise RuntimeError(f"the local server process did not start: {line!r}") from None
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None
        if self._loop is not None and self._server is not None:
            loop, server = self._loop, self._server

            def shutdown() -> None:
                server.close()
                for task in asyncio.all_tasks(loop):
                    task.cancel()
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)
        self._thread = self._loop = self._server = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def local_server(delay_ms: float = 0.0, stall: tuple[float, float] | None = None, process: bool = False
                 ) -> Iterator[LocalServer]:
    """``with local_server(stall=(1.0, 0.5)) as srv: open_loop(srv.address, rate=200, ...)``."""
    srv = LocalServer(delay_ms=delay_ms, stall=stall, process=process).start()
    try:
        yield srv
    finally:
        srv.stop()


def _serve_main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m gwlib.traffic serve")
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--stall", default=None, help="AFTER,FOR in seconds")
    a = ap.parse_args(argv)
    stall = tuple(float(x) for x in a.stall.split(",")) if a.stall else None
    state = _ServerState(a.delay_ms, stall, b"ok")  # type: ignore[arg-type]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _ServerProtocol(state), "127.0.0.1", 0, backlog=1024)
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        stop = asyncio.Event()
        import signal
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # also stop when the parent goes away (stdout closed / orphaned)
        parent = os.getppid()

        async def watch_parent() -> None:
            while not stop.is_set():
                if os.getppid() != parent:
                    stop.set()
                await asyncio.sleep(0.5)
        watcher = asyncio.create_task(watch_parent())
        async with server:
            await stop.wait()
        watcher.cancel()
    asyncio.run(main())
    return 0


# -- wrk / wrk2 --------------------------------------------------------------------------------

def wrk_available() -> str | None:
    """``"wrk2"``, ``"wrk"`` or None: which wrk binary is on PATH."""
    exe = shutil.which("wrk2") or shutil.which("wrk")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "wrk2" if "--rate" in (out.stdout + out.stderr) else "wrk"


def wrk(target: str | int | tuple[str, int], *, rate: float | None = None, duration: float = 10.0,
        connections: int = 8, threads: int = 2, host: str | None = None, timeout: float = 5.0) -> Result:
    """Run wrk2 (``-R rate``) or wrk against a loopback target and parse its output.

    Raises ``FileNotFoundError`` when neither is installed. wrk2 needs ``rate``.
    """
    kind = wrk_available()
    if kind is None:
        raise FileNotFoundError("neither wrk2 nor wrk is installed")
    h, port, p = parse_target(target)
    if not 0 < duration <= MAX_DURATION_S:
        raise ValueError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds")
    exe = shutil.which("wrk2") or shutil.which("wrk")
    assert exe is not None
    args = [exe, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
            f"--timeout={max(1, round(timeout))}s"]
    if kind == "wrk2":
        if not rate:
            raise ValueError("wrk2 needs a rate")
        args.append(f"-R{int(rate)}")
    if host:
        args += ["-H", f"Host: {host}"]
    args.append(f"http://{h}:{port}{p}")
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed ({out.returncode}): {out.stderr.strip()[:300]}")
    from .latency.parsers import load
    return load(out.stdout, tool=kind, rate=rate if kind == "wrk2" else None)


if __name__ == "__main__":  # pragma: no cover - exercised through LocalServer(process=True)
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        raise SystemExit(_serve_main(sys.argv[2:]))
    print("usage: python -m gwlib.traffic serve [--delay-ms MS] [--stall AFTER,FOR]", file=sys.stderr)
    raise SystemExit(2)
