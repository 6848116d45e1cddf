"""Requests in cluster mode: through "the Gateway" on a 127.0.0.1 port (as the kind port
mapping gives it), answered like the upstream echo-basic server answers behind Traefik, and
turned into the design's answer format."""
from __future__ import annotations

import base64
import itertools
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "cluster"))

from fakeapi import FakeApiServer  # noqa: E402
from support import SHOP, connect, fixture, reconcile  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::gwlib.cluster.ClusterWarning")
ROOT = Path(__file__).resolve().parents[1]


def _go_canonical(name: str) -> str:
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


class FakeGateway:
    """Traefik in front of echo-basic pods: a request for a known host is answered by the
    next pod of ``pods`` with echo-basic's JSON report; other hosts get Traefik's 404."""

    def __init__(self, pods, hosts=("shop.example.com",), tls: tuple[str, str] | None = None):
        self.pods = itertools.cycle(pods)
        self.hosts = hosts
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def _do(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                host = self.headers.get("Host", "")
                if host.split(":")[0] not in gw.hosts:
                    body = b"404 page not found\n"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("X-Content-Type-Options", "nosniff")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                ns, pod, service = next(gw.pods)
                headers: dict[str, list[str]] = {}
                for k, v in self.headers.items():
                    if k.lower() == "host":
                        continue
                    headers.setdefault(_go_canonical(k), []).append(v)
                headers.setdefault("X-Forwarded-For", ["10.244.0.1"])
                headers.setdefault("X-Forwarded-Host", [host])
                report = {"path": self.path, "host": host, "method": self.command, "proto": "HTTP/1.1",
                          "headers": headers, "namespace": ns, "ingress": "", "service": service, "pod": pod}
                body = json.dumps(report, indent=1).encode()
                self.send_response(200)
                for kv in ",".join(self.headers.get_all("X-Echo-Set-Header") or []).split(","):
                    if kv.strip():
                        n, _, v = kv.strip().partition(":")
                        self.send_header(n, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _do

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


V1 = ("shop", "web-v1-5d8f7c9b6-abcde", "web-v1")
V2 = ("shop", "web-v2-6c9d8f7b5-fghij", "web-v2")


def _cluster(api, tmp_path, gw_port, **kw):
    conn = connect(api, tmp_path, ports={80: gw_port}, **kw)
    conn.apply(SHOP, wait=False)
    reconcile(api)
    for item in fixture("endpointslices.json")["items"]:
        api.put({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", **item})
    return conn


def test_an_answer_in_the_design_s_format(tmp_path):
    with FakeApiServer() as api, FakeGateway([V2]) as gw:
        conn = _cluster(api, tmp_path, gw.port)
        ans = conn.request(gateway="shop/web", host="shop.example.com", path="/p?q=1", method="POST",
                           headers={"x-env": "canary", "X-Echo-Set-Header": "X-Foo:bar,X-Foo:baz"})
        assert set(ans) == {"status", "backend", "request", "headers", "location", "mirrored_to", "route", "rule"}
        assert ans["status"] == 200
        assert ans["backend"] == {"namespace": "shop", "name": "web-v2", "port": 8080}
        assert ans["request"]["method"] == "POST" and ans["request"]["path"] == "/p?q=1"
        assert ans["request"]["host"] == "shop.example.com"
        assert ans["request"]["headers"]["X-Env"] == "canary"
        assert ans["request"]["headers"]["X-Forwarded-Host"] == "shop.example.com"
        assert ans["headers"] == {"X-Foo": "bar,baz"}      # repeated values joined with ","; echo's own headers left out
        assert ans["location"] is None and ans["mirrored_to"] == [] and ans["route"] is None and ans["rule"] is None
        frame = conn.table([{"gateway": "shop/web", "host": "shop.example.com", "path": "/"}])
        assert frame.loc[0, "backend"] == "shop/web-v2:8080" and frame.loc[0, "status"] == 200


def test_a_gateway_404_has_no_backend(tmp_path):
    with FakeApiServer() as api, FakeGateway([V1]) as gw:
        conn = _cluster(api, tmp_path, gw.port)
        ans = conn.request(gateway="shop/web", host="nope.example.com", path="/")
        assert ans["status"] == 404 and ans["backend"] is None and ans["request"] is None
        assert "Content-Type" not in ans["headers"]


def test_the_backend_is_the_service_whose_endpoints_hold_the_pod(tmp_path):
    # the pod of web-v1 is also behind the Service web-all; gwlib's model of the route says web-v1
    with FakeApiServer() as api, FakeGateway([("shop", "web-v1-5d8f7c9b6-abcde", ""), V2]) as gw:
        conn = _cluster(api, tmp_path, gw.port)
        counts = conn.sample(gateway="shop/web", host="shop.example.com", path="/", n=10)
        assert counts == {"shop/web-v1": 5, "shop/web-v2": 5}
        slices = [r for r in api.requests if r.path == "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"]
        assert 1 <= len(slices) <= 3          # cached, not read per request


def test_a_pod_unknown_to_the_endpoints_falls_back_to_the_echo_s_service_name(tmp_path):
    with FakeApiServer() as api, FakeGateway([("shop", "web-v2-new-pod", "web-v2")]) as gw:
        conn = _cluster(api, tmp_path, gw.port)
        assert conn.request(gateway="shop/web", host="shop.example.com")["backend"] == \
            {"namespace": "shop", "name": "web-v2", "port": 8080}


def test_without_a_host_the_request_carries_the_gateway_s_address(tmp_path):
    with FakeApiServer() as api, FakeGateway([V1], hosts=("10.96.44.12",)) as gw:
        conn = _cluster(api, tmp_path, gw.port)
        ans = conn.request(gateway="shop/web", path="/")
        assert ans["request"]["host"] == "10.96.44.12"       # status.addresses of the Gateway


def test_requests_that_cannot_be_sent(tmp_path):
    with FakeApiServer() as api, FakeGateway([V1]) as gw:
        conn = _cluster(api, tmp_path, gw.port)
        cases = {
            "Gateway shop/nope not found in the cluster": {"gateway": "shop/nope"},
            "connection refused: Gateway shop/web has no listener on port 8000": {"gateway": "shop/web", "port": 8000},
            '"grpc" must be {"service"': {"gateway": "shop/web", "grpc": "a.B/C"},     # gRPC: tests/test_cluster_grpc.py
            "mesh requests need a client inside the mesh": {"service": "shop/web-v1", "port": 8080, "from": "shop"},
            'the request has no "gateway"': {"path": "/"},
        }
        for message, req in cases.items():
            ans = conn.request(req)
            assert ans["status"] is None and ans["backend"] is None and message in ans["error"], (req, ans)
        conn.host_ports = {}
        assert "has no host port mapping" in conn.request(gateway="shop/web")["error"]
    conn.host_ports = {80: gw.port}
    ans = conn.request(gateway="shop/web", host="shop.example.com")       # the gateway is gone
    assert ans["status"] is None and ans["error"].startswith("connection failed")


def test_gateway_address_mode_connects_to_the_status_address(tmp_path):
    with FakeApiServer() as api, FakeGateway([V1]) as gw:
        conn = _cluster(api, tmp_path, gw.port, address=None)
        st = fixture("gateway-status.json")
        st["addresses"] = [{"type": "IPAddress", "value": "127.0.0.1"}]
        api.set_status("Gateway", "web", "shop", st)
        conn._changed()
        # the listener port (80) on the Gateway's own address: nothing listens there in this test
        ans = conn.request(gateway="shop/web", host="shop.example.com")
        assert ans["error"].endswith("(127.0.0.1:80)")


def test_https_through_the_gateway_trusts_the_applied_secret(tmp_path):
    secret = yaml.safe_load((ROOT / "data" / "manifests" / "talk" / "50-secret.yaml").read_text())
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    crt.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    key.write_bytes(base64.b64decode(secret["data"]["tls.key"]))
    with FakeApiServer() as api, FakeGateway([("argocd", "argocd-server-abc", "argocd-server")],
                                             hosts=("argocd.example.com",), tls=(str(crt), str(key))) as gw:
        conn = connect(api, tmp_path, ports={443: gw.port, 80: 1})
        conn.apply(ROOT / "data" / "manifests" / "talk", wait=False)
        reconcile(api)
        ans = conn.request(gateway="argocd/argocd-server-gateway", host="argocd.example.com", scheme="https", path="/")
        assert ans["status"] == 200, ans
        assert ans["backend"] == {"namespace": "argocd", "name": "argocd-server", "port": 80}
        bad = conn.request(gateway="argocd/argocd-server-gateway", host="other.example.com", scheme="https")
        assert bad["error"].startswith("TLS handshake failed")    # the certificate does not name that host
