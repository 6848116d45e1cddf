"""A fake Kubernetes API server on 127.0.0.1 for the cluster-mode unit tests.

It answers the way kube-apiserver does, in the shapes the API documents
(https://kubernetes.io/docs/reference/using-api/api-concepts/,
https://kubernetes.io/docs/reference/using-api/server-side-apply/):

* discovery: ``GET /api``, ``/api/v1``, ``/apis``, ``/apis/{group}/{version}``
  (``APIResourceList``; a group/version it does not serve is a 404);
* objects: ``GET`` one or a list (``labelSelector`` with ``k=v`` terms), ``PATCH`` with
  ``application/apply-patch+yaml`` (server-side apply: ``fieldManager`` required, the
  object created when absent, ``metadata.generation`` bumped when the spec changes,
  ``managedFields`` recorded, ``dryRun=All`` honoured), ``application/merge-patch+json``
  (RFC 7386) and ``application/json-patch+json`` (RFC 6902, ``test`` included), on the
  object or its ``status`` subresource, and ``DELETE`` (a namespace takes its objects
  with it);
* ``GET /api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`` from :attr:`proxy`;
* errors as ``Status`` objects: 404 NotFound, 409 Conflict, 422 Invalid, 415, 400.

Every request is recorded in :attr:`FakeApiServer.requests`. :meth:`fail` makes the next
matching request fail with a given Status; :attr:`forbid` makes every request a test failure.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# (group, version, kind, plural, namespaced, subresources)
RESOURCES = [
    ("", "v1", "Namespace", "namespaces", False, ("status",)),
    ("", "v1", "Service", "services", True, ("status",)),
    ("", "v1", "Secret", "secrets", True, ()),
    ("", "v1", "ConfigMap", "configmaps", True, ()),
    ("", "v1", "ServiceAccount", "serviceaccounts", True, ()),
    ("", "v1", "Pod", "pods", True, ("status", "proxy")),
    ("apps", "v1", "Deployment", "deployments", True, ("status", "scale")),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, ()),
    ("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", False, ("status",)),
    ("gateway.networking.k8s.io", "v1", "Gateway", "gateways", True, ("status",)),
    ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True, ("status",)),
    ("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes", True, ("status",)),
    ("gateway.networking.k8s.io", "v1", "ReferenceGrant", "referencegrants", True, ()),
    ("argoproj.io", "v1alpha1", "Rollout", "rollouts", True, ("status", "scale")),
    ("argoproj.io", "v1alpha1", "AnalysisTemplate", "analysistemplates", True, ()),
    ("argoproj.io", "v1alpha1", "ClusterAnalysisTemplate", "clusteranalysistemplates", False, ()),
]

STAMP = "2026-09-01T10:00:00Z"


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A ``Status`` object as the API server sends with an error."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


def not_found(plural: str, name: str, group: str = "") -> dict:
    what = f"{plural}.{group}" if group else plural
    return status_body(404, "NotFound", f'{what} "{name}" not found',
                       {"name": name, **({"group": group} if group else {}), "kind": plural})


class Headers(dict):
    """Request headers, names compared case-insensitively (as HTTP does)."""

    def __init__(self, items):
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __contains__(self, key):
        return super().__contains__(key.lower())


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: object

    def q(self, name: str) -> str | None:
        v = self.query.get(name)
        return v[0] if v else None


@dataclass
class _Failure:
    method: str
    pattern: str
    body: dict
    times: int


def _merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


class PatchTestFailed(Exception):
    pass


def _pointer(path: str) -> list:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json_patch(doc, ops):
    """RFC 6902 (add, remove, replace, test)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if op["op"] == "test":
                if parent[idx] != op["value"]:
                    raise PatchTestFailed(f"testing value {op['path']} failed")
            elif op["op"] == "replace":
                parent[idx] = op["value"]
            elif op["op"] == "add":
                parent.insert(idx, op["value"])
            elif op["op"] == "remove":
                del parent[idx]
        else:
            if op["op"] == "test":
                if parent.get(last) != op["value"]:
                    raise PatchTestFailed(f"testing value {op['path']} failed")
            elif op["op"] == "replace":
                if last not in parent:
                    raise PatchTestFailed(f"replace operation does not apply: doc is missing key: {op['path']}")
                parent[last] = op["value"]
            elif op["op"] == "add":
                parent[last] = op["value"]
            elif op["op"] == "remove":
                del parent[last]
    return doc


@dataclass
class FakeApiServer:
    """``with FakeApiServer() as api: ...`` — ``api.url`` is its address."""

    resources: list = field(default_factory=lambda: list(RESOURCES))
    requests: list = field(default_factory=list)
    objects: dict = field(default_factory=dict)     # (plural, group, ns, name) -> object
    proxy: dict = field(default_factory=dict)       # (ns, pod, port, path) -> text
    forbid: bool = False
    token: str = "gwlib-test-token"

    def __post_init__(self):
        self._lock = threading.RLock()
        self._failures: list[_Failure] = []
        self._rv = 100
        self._uid = 0
        self.violations: list[str] = []

    # -- lifetime ---------------------------------------------------------------------------

    def __enter__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):  # quiet
                pass

            def _do(self):
                server._handle(self)

            do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _do

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def kubeconfig(self, path, context: str = "kind-gwlib", extra_contexts: dict | None = None) -> str:
        """Write a kubeconfig whose ``context`` points here (token auth); returns the path."""
        contexts = [{"name": context, "context": {"cluster": "fake", "user": "fake"}}]
        users = [{"name": "fake", "user": {"token": self.token}}]
        for name, user in (extra_contexts or {}).items():
            contexts.append({"name": name, "context": {"cluster": "fake", "user": f"u-{name}"}})
            users.append({"name": f"u-{name}", "user": user})
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": context,
               "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
               "contexts": contexts, "users": users}
        import yaml
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(cfg, fh)
        return str(path)

    # -- the store --------------------------------------------------------------------------

    def _res_by_plural(self, group: str, version: str, plural: str):
        for r in self.resources:
            if r[0] == group and r[1] == version and r[3] == plural:
                return r
        return None

    def _res_by_kind(self, api_version: str, kind: str):
        group, _, version = api_version.rpartition("/")
        for r in self.resources:
            if r[0] == group and r[1] == version and r[2] == kind:
                return r
        raise KeyError(f"no resource {api_version} {kind}")

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def put(self, obj: dict) -> dict:
        """Store an object as if someone had created it (server fields filled in)."""
        with self._lock:
            obj = copy.deepcopy(obj)
            r = self._res_by_kind(obj["apiVersion"], obj["kind"])
            meta = obj.setdefault("metadata", {})
            if not r[4]:
                meta.pop("namespace", None)
            self._uid += 1
            meta.setdefault("uid", f"00000000-0000-4000-8000-{self._uid:012d}")
            meta.setdefault("resourceVersion", self._next_rv())
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", STAMP)
            self.objects[(r[3], r[0], meta.get("namespace"), meta["name"])] = obj
            return obj

    def get_object(self, kind: str, name: str, namespace: str | None = None, api_version: str | None = None) -> dict | None:
        for (plural, group, ns, nm), obj in self.objects.items():
            if obj["kind"] == kind and nm == name and ns == namespace \
                    and (api_version is None or obj["apiVersion"] == api_version):
                return obj
        return None

    def set_status(self, kind: str, name: str, namespace: str | None, status: dict) -> None:
        with self._lock:
            obj = self.get_object(kind, name, namespace)
            obj["status"] = copy.deepcopy(status)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def fail(self, method: str, pattern: str, code: int, reason: str, message: str,
             details: dict | None = None, times: int = 1) -> None:
        """The next ``times`` requests ``method`` on a path matching ``pattern`` fail."""
        self._failures.append(_Failure(method, pattern, status_body(code, reason, message, details), times))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))]

    # -- the handler ------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = Recorded(h.command, parts.path, parse_qs(parts.query), Headers(h.headers.items()), body)
        with self._lock:
            self.requests.append(rec)
        if self.forbid:
            self.violations.append(f"{h.command} {parts.path}")
            return self._send(h, 500, status_body(500, "InternalError", "this test forbids any API call"))
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, status_body(401, "Unauthorized", "Unauthorized"))
        for f in self._failures:
            if f.times > 0 and f.method == h.command and re.search(f.pattern, parts.path):
                f.times -= 1
                return self._send(h, f.body["code"], f.body)
        try:
            code, out, ctype = self._route(rec)
        except Exception as exc:  # a bug in the fake: make it visible
            self.violations.append(f"fake crashed on {h.command} {parts.path}: {exc!r}")
            code, out, ctype = 500, status_body(500, "InternalError", repr(exc)), "application/json"
        self._send(h, code, out, ctype)

    def _send(self, h, code: int, out, ctype: str = "application/json") -> None:
        data = out if isinstance(out, bytes) else (out.encode() if isinstance(out, str) else json.dumps(out).encode())
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(self, rec: Recorded):
        segs = [s for s in rec.path.split("/") if s]
        if rec.path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "172.18.0.2:6443"}]}, \
                "application/json"
        if rec.path == "/apis":
            groups = sorted({(r[0], r[1]) for r in self.resources if r[0]})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]}, "application/json"
        if segs[:1] == ["api"] and len(segs) == 2:
            return self._discovery("", segs[1])
        if segs[:1] == ["apis"] and len(segs) == 3:
            return self._discovery(segs[1], segs[2])
        if segs[:1] == ["api"]:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[:1] == ["apis"]:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return 404, status_body(404, "NotFound", "the server could not find the requested resource"), "application/json"
        ns = None
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if plural == "namespaces" and ns is None and name is None and len(rest) == 1:
            pass
        r = self._res_by_plural(group, version, plural)
        if r is None:
            return 404, status_body(404, "NotFound", "the server could not find the requested resource"), "application/json"
        if plural == "pods" and name and ":" in name and sub == "proxy":
            pod, port = name.split(":", 1)
            text = self.proxy.get((ns, pod, int(port), "/".join(rest[3:])))
            if text is None:
                return 503, status_body(503, "ServiceUnavailable", f'error trying to reach service: dial tcp 10.244.0.9:{port}: connect: connection refused'), "application/json"
            return 200, text, "text/plain; version=0.0.4"
        if plural == "services" and name and ":" in name and sub == "proxy":
            svc, port = name.split(":", 1)
            answer = self.proxy.get((ns, f"svc/{svc}", int(port), "/".join(rest[3:])))
            if answer is None:
                return 503, status_body(503, "ServiceUnavailable", f'no endpoints available for service "{svc}:{port}"'), "application/json"
            text = answer(rec) if callable(answer) else answer
            return 200, text, "application/json"
        if sub and sub not in r[5]:
            return 404, status_body(404, "NotFound", "the server could not find the requested resource"), "application/json"
        key = (plural, group, ns if r[4] else None, name)
        if rec.method == "GET" and name is None:
            return self._list(r, ns, rec.q("labelSelector"))
        if rec.method == "GET":
            obj = self.objects.get(key)
            if obj is None:
                return 404, not_found(plural, name, group), "application/json"
            return 200, obj, "application/json"
        if rec.method == "PATCH":
            return self._patch(r, key, rec, sub)
        if rec.method == "DELETE":
            obj = self.objects.get(key)
            if obj is None:
                return 404, not_found(plural, name, group), "application/json"
            with self._lock:
                del self.objects[key]
                if plural == "namespaces":
                    for k in [k for k in self.objects if k[2] == name]:
                        del self.objects[k]
            return 200, status_body(200, "", "")  | {"status": "Success", "details": {"name": name, "group": group, "kind": plural}}, "application/json"
        return 405, status_body(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource"), "application/json"

    def _discovery(self, group: str, version: str):
        rs = [r for r in self.resources if r[0] == group and r[1] == version]
        if not rs:
            return 404, status_body(404, "NotFound", "the server could not find the requested resource"), "application/json"
        resources = []
        for r in rs:
            resources.append({"name": r[3], "singularName": r[2].lower(), "namespaced": r[4], "kind": r[2],
                              "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                              "storageVersionHash": "abcdefghijk="})
            for s in r[5]:
                resources.append({"name": f"{r[3]}/{s}", "singularName": "", "namespaced": r[4], "kind": r[2],
                                  "verbs": ["get", "patch", "update"]})
        gv = f"{group}/{version}" if group else version
        return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}, \
            "application/json"

    def _list(self, r, ns, selector):
        terms = {}
        for term in (selector or "").split(","):
            if term:
                k, _, v = term.partition("=")
                terms[k] = v
        items = []
        for (plural, group, ons, _), obj in sorted(self.objects.items(), key=lambda kv: (kv[0][2] or "", kv[0][3])):
            if plural != r[3] or group != r[0] or (ns is not None and ons != ns):
                continue
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in terms.items()):
                item = copy.deepcopy(obj)
                item.pop("apiVersion", None)
                item.pop("kind", None)
                items.append(item)
        gv = f"{r[0]}/{r[1]}" if r[0] else r[1]
        return 200, {"kind": f"{r[2]}List", "apiVersion": gv, "metadata": {"resourceVersion": str(self._rv)},
                     "items": items}, "application/json"

    def _patch(self, r, key, rec: Recorded, sub):
        ctype = (rec.headers.get("Content-Type") or "").split(";")[0].strip()
        plural, group, ns, name = key
        gv = f"{r[0]}/{r[1]}" if r[0] else r[1]
        existing = self.objects.get(key)
        dry = rec.q("dryRun") == "All"
        if ctype == "application/apply-patch+yaml":
            if not rec.q("fieldManager"):
                return 422, status_body(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                        'Required value: is required for apply patch',
                                        {"group": "meta.k8s.io", "kind": "PatchOptions",
                                         "causes": [{"reason": "FieldValueRequired",
                                                     "message": "Required value: is required for apply patch",
                                                     "field": "fieldManager"}]}), "application/json"
            body = rec.body
            if not isinstance(body, dict):
                return 400, status_body(400, "BadRequest", "error decoding YAML: the body of the request was in an unknown format"), "application/json"
            if body.get("apiVersion") != gv or body.get("kind") != r[2]:
                return 400, status_body(400, "BadRequest",
                                        f"the API version in the data ({body.get('apiVersion')}) does not match "
                                        f"the expected API version ({gv})"), "application/json"
            if (body.get("metadata") or {}).get("name") != name:
                return 400, status_body(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                                        % ((body.get("metadata") or {}).get("name"), name)), "application/json"
            if r[4] and ("namespaces", "", None, ns) not in self.objects:
                return 404, not_found("namespaces", ns), "application/json"
            manager = rec.q("fieldManager")
            with self._lock:
                if existing is None:
                    obj = copy.deepcopy(body)
                    meta = obj.setdefault("metadata", {})
                    if r[4]:
                        meta["namespace"] = ns
                    self._uid += 1
                    meta.update({"uid": f"00000000-0000-4000-8000-{self._uid:012d}", "resourceVersion": self._next_rv(),
                                 "generation": 1, "creationTimestamp": STAMP,
                                 "managedFields": [{"manager": manager, "operation": "Apply", "apiVersion": gv,
                                                    "time": STAMP, "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]})
                    code = 201
                else:
                    obj = copy.deepcopy(existing)
                    for k, v in body.items():
                        if k == "metadata":
                            for mk in ("labels", "annotations"):
                                if v.get(mk):
                                    obj["metadata"][mk] = {**(obj["metadata"].get(mk) or {}), **v[mk]}
                        elif k != "status":
                            obj[k] = copy.deepcopy(v)
                    if obj.get("spec") != existing.get("spec"):
                        obj["metadata"]["generation"] = existing["metadata"].get("generation", 1) + 1
                    obj["metadata"]["resourceVersion"] = self._next_rv()
                    code = 200
                if not dry:
                    self.objects[key] = obj
            return code, obj, "application/json"
        if existing is None:
            return 404, not_found(plural, name, group), "application/json"
        if ctype == "application/merge-patch+json":
            if sub == "status":
                new = copy.deepcopy(existing)
                new["status"] = _merge_patch(existing.get("status") or {}, (rec.body or {}).get("status") or {})
            else:
                patch = {k: v for k, v in (rec.body or {}).items() if k != "status"}
                new = _merge_patch(existing, patch)
        elif ctype == "application/json-patch+json":
            try:
                new = _json_patch(existing, rec.body)
            except (PatchTestFailed, KeyError, IndexError, ValueError) as exc:
                return 422, status_body(422, "Invalid", "the server rejected our request due to an error in our "
                                        f"request: {exc}"), "application/json"
        else:
            return 415, status_body(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                                    f'accepted media types include: application/json-patch+json, '
                                    f'application/merge-patch+json, application/apply-patch+yaml'), "application/json"
        with self._lock:
            if new.get("spec") != existing.get("spec"):
                new["metadata"]["generation"] = existing["metadata"].get("generation", 1) + 1
            new["metadata"]["resourceVersion"] = self._next_rv()
            if not dry:
                self.objects[key] = new
        return 200, new, "application/json"
