"""gwlib.traffic against local servers on 127.0.0.1 (loose assertions; never on wall-clock speed)."""
from __future__ import annotations

import socket
import threading

import pytest

import gwlib.latency as L
from gwlib import traffic


@pytest.fixture(autouse=True)
def no_leftover_threads():
    before = {t.ident for t in threading.enumerate()}
    yield
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    for t in left:
        t.join(5)
    assert not [t.name for t in left if t.is_alive()]


def test_targets_must_be_loopback():
    assert traffic.parse_target("127.0.0.1:8080") == ("127.0.0.1", 8080, "/")
    assert traffic.parse_target("http://localhost:81/p?q=1") == ("127.0.0.1", 81, "/p?q=1")
    assert traffic.parse_target(9000) == ("127.0.0.1", 9000, "/")
    assert traffic.parse_target(("127.0.0.2", 80), "/x") == ("127.0.0.2", 80, "/x")
    for bad in ("10.0.0.1:80", "http://example.com:80/", "192.168.1.1:8080", "8.8.8.8:53"):
        with pytest.raises(ValueError):
            traffic.parse_target(bad)
    with pytest.raises(ValueError):
        traffic.parse_target("https://127.0.0.1:443/")
    with pytest.raises(ValueError):
        traffic.parse_target("127.0.0.1")


def test_runs_are_bounded():
    with pytest.raises(ValueError):
        traffic.open_loop("127.0.0.1:1", rate=10, duration=10_000)
    with pytest.raises(ValueError):
        traffic.run("127.0.0.1:1", mode="open")
    with pytest.raises(ValueError):
        traffic.closed_loop("127.0.0.1:1", requests=10**9)


def test_payload_sets_host_header_and_body():
    p = traffic._payload("127.0.0.1", 8080, "/a", "POST", {"X-Env": "canary", "host": "ignored"}, "hi",
                         "echo.example.com")
    text = p.decode()
    assert text.startswith("POST /a HTTP/1.1\r\n")
    assert "host: ignored" in text and "Host: echo.example.com" not in text  # an explicit header wins
    assert "Content-Length: 2" in text and text.endswith("\r\n\r\nhi")
    q = traffic._payload("127.0.0.1", 8080, "/", "GET", None, None, "echo.example.com").decode()
    assert "Host: echo.example.com\r\n" in q


def test_open_loop_keeps_the_rate():
    with traffic.local_server() as srv:
        res = traffic.open_loop(srv.address, rate=200, duration=1.5, connections=4)
    assert res.mode == "open" and res.corrected is True
    assert res.sent == 300 and res.requests + res.errors == 300 and res.errors == 0
    assert res.achieved_rate == pytest.approx(200, rel=0.1)
    assert res.histogram.count == 300 and res.uncorrected.count == 300 and res.send_lag.count == 300
    assert res.status_codes == {200: 300}
    # intended-time latency is never below the actual-send latency
    assert res.histogram.percentile(50) >= res.uncorrected.percentile(50)
    df = res.to_frame()
    assert list(df.columns) == L.SCHEMA and set(df["tool"]) == {"gwlib"} and (df["rate"] == 200).all()


def test_poisson_arrivals_are_seeded():
    with traffic.local_server() as srv:
        a = traffic.open_loop(srv.address, rate=300, duration=1.0, arrivals="poisson", seed=3)
        b = traffic.open_loop(srv.address, rate=300, duration=1.0, arrivals="poisson", seed=3)
    assert a.sent == b.sent and abs(a.sent - 300) < 4 * 300 ** 0.5 and a.errors == 0


def test_closed_loop_counts_and_progress():
    seen = []
    with traffic.local_server() as srv:
        res = traffic.closed_loop(srv.address, connections=3, requests=500, progress=seen.append)
    assert res.mode == "closed" and res.corrected is False
    assert res.requests == 500 and res.sent == 500 and res.errors == 0
    assert seen[-1] == 500 and len(seen) == 500
    assert res.send_lag is None and res.histogram is res.uncorrected


def test_closed_loop_pacing_does_not_exceed_the_rate():
    with traffic.local_server() as srv:
        res = traffic.closed_loop(srv.address, connections=2, rate=100, duration=1.0)
    assert 60 <= res.requests <= 105


def test_a_delayed_server_shows_in_the_latency():
    with traffic.local_server(delay_ms=20) as srv:
        res = traffic.closed_loop(srv.address, connections=2, requests=40)
    assert res.histogram.percentile(50) >= 19


def test_stall_closed_loop_hides_it_open_loop_shows_it():
    demo = L.coordinated_omission(rate=200, duration=1.6, stall_at=0.5, stall_for=0.4)
    v = demo.verdict()
    assert v["closed loop: only max shows it"]
    assert v["open loop (corrected): p90 shows it"]
    assert v["open loop (corrected): p99 near the stall"]
    t = demo.table()
    assert t.loc["open loop, from intended send (corrected)", "requests"] == 320
    assert t.loc["closed loop", "requests"] < 320           # the requests it never sent
    assert demo.expected_affected() == pytest.approx(0.25)


def test_connection_refused_is_a_clear_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        traffic.open_loop(port, rate=10, duration=0.5, timeout=1)


class QuirkyServer:
    """Answers alternately with a chunked body and with Connection: close (raw sockets)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.n = 0
        self.stop = False
        self.threads = []
        self.t = threading.Thread(target=self.accept, daemon=True)
        self.t.start()

    def accept(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self.serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def serve(self, c):
        c.settimeout(2)
        buf = b""
        with c:
            while not self.stop:
                try:
                    data = c.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    self.n += 1
                    if self.n % 2:
                        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                    else:
                        c.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy")
                        return

    def close(self):
        self.stop = True
        self.t.join(2)
        for t in self.threads:
            t.join(2)
        self.sock.close()


def test_chunked_bodies_and_reconnects_after_connection_close():
    srv = QuirkyServer()
    try:
        res = traffic.closed_loop(srv.port, connections=1, requests=20, timeout=2)
    finally:
        srv.close()
    assert res.requests == 20
    assert res.status_codes == {200: 10, 503: 10}
    assert res.errors == 10          # status >= 400 counts as an error


def test_server_in_a_child_process():
    with traffic.local_server(process=True) as srv:
        res = traffic.closed_loop(srv.address, connections=2, requests=200)
        proc = srv._proc
    assert res.requests == 200
    assert proc is None or proc.poll() is not None


def test_wrk_wrapper(monkeypatch):
    if traffic.wrk_available() is None:
        with pytest.raises(FileNotFoundError):
            traffic.wrk("127.0.0.1:1", rate=10, duration=1)
        return
    with traffic.local_server() as srv:  # pragma: no cover - only where wrk is installed
        r = traffic.wrk(srv.address, rate=200, duration=2, connections=2, threads=1)
    assert r.tool in ("wrk", "wrk2") and r.percentiles[50] > 0
