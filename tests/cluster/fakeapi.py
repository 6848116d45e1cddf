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

:class:`FakeArgoRollouts` plays the Argo Rollouts controller and its Gateway API plugin for
one Rollout, one reconcile per :meth:`~FakeArgoRollouts.tick`; :class:`RolloutGateway` is a
data plane that sends each request where the live HTTPRoute's weights say, to the pods of
the ReplicaSet the Service selects; :class:`FakeTime` is a clock whose ``sleep`` ticks the
controller, so a whole rollout runs in no real time.
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
    ("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns", True, ("status",)),
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
        with self._lock:   # one request at a time, serialized before anyone changes the objects again
            try:
                code, out, ctype = self._route(rec)
            except Exception as exc:  # a bug in the fake: make it visible
                self.violations.append(f"fake crashed on {h.command} {parts.path}: {exc!r}")
                code, out, ctype = 500, status_body(500, "InternalError", repr(exc)), "application/json"
            if not isinstance(out, bytes):
                out = out.encode() if isinstance(out, str) else json.dumps(out).encode()
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


# -- Argo Rollouts, played ----------------------------------------------------------------------

ROLLOUT_API = "argoproj.io/v1alpha1"
HASH = "rollouts-pod-template-hash"
EPOCH = 1_788_256_800.0            # 2026-09-01T10:00:00Z: the controller's clock starts here


def _rfc3339(t: float) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(EPOCH + t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def argo_hash(template: dict) -> str:
    """A pod-template hash in the shape Argo's has (10 characters of Kubernetes' safe
    alphabet) — computed differently from gwlib's own, so nothing can confuse the two."""
    import hashlib
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def _duration(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"(\d+)([smh]?)", str(value))
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class FakeArgoRollouts:
    """The Argo Rollouts controller (v1.x) and the Gateway API plugin, for one Rollout, as
    they write the objects (argo-rollouts ``rollout/canary.go``, ``rollout/trafficrouting.go``,
    ``rollout/analysis.go``, ``rollout/pause.go``; the plugin's ``setHTTPRouteWeight``):

    * a new pod-template hash is a new revision (annotation ``rollout.argoproj.io/revision``):
      the first one is deployed at once (stableRS = currentPodHash, Healthy); going back to
      the stable ReplicaSet skips every step; any other starts the steps at index 0;
    * ``setWeight``: one reconcile with the canary pods not ready ("more replicas need to be
      updated", the previous weight), then the weight is written into every rule that lists
      both Services (canary ``w``, stable ``100-w``, the in-progress label) and the step is done;
    * ``pause``: the ``CanaryPauseStep`` pause condition (phase Paused); a duration ends it,
      otherwise clearing ``pauseConditions`` (promote) does;
    * ``analysis``: an AnalysisRun ``<rollout>-<hash>-<revision>-<step>`` labelled
      ``rollout-type: Step``, ``step-index``, ``rollouts-pod-template-hash``, owned by the
      Rollout; one scripted measurement per reconcile (:attr:`analysis`: step index →
      ``[(metric, value string, phase), ...]``; unscripted: one ``"[1]"`` Successful per
      metric of the templates); Successful → next step, Failed/Error → abort,
      Inconclusive → pause ``InconclusiveAnalysisRun``;
    * abort: weight 0, canary Service back on the stable hash, ``currentStepIndex`` 0,
      phase Degraded with ``RolloutAborted: Rollout aborted update to revision N: ...``;
      ``status.abort: false`` (retry) starts the steps again; ``promoteFull`` skips them;
    * after the last step: stableRS = currentPodHash, weight 0, both Services on the new hash;
    * Services' selectors get ``rollouts-pod-template-hash``; each ReplicaSet has one pod,
      listed in the EndpointSlice of every Service that selects it.

    ``now``: the controller's clock (seconds). ``log``: what it did, one line per change."""

    def __init__(self, api: FakeApiServer, key: str, now=None, analysis: dict | None = None):
        self.api = api
        self.ns, self.name = key.split("/")
        self.now = now or (lambda: 0.0)
        self.analysis = dict(analysis or {})
        self.versions: dict[str, str] = {}     # hash -> version label
        self.log: list[str] = []
        self.ticks = 0
        self._ready: set[tuple[str, int]] = set()
        self._abort_message = ""
        self._ar_seq = 0
        self._scripts: dict[str, list] = {}     # AnalysisRun name -> measurements still to take
        self._routed: int | None = None
        self._pause_started = 0.0

    # -- helpers ----------------------------------------------------------------------------

    def _ro(self):
        return self.api.get_object("Rollout", self.name, self.ns)

    def _steps(self, ro) -> list:
        return ((ro.get("spec") or {}).get("strategy") or {}).get("canary", {}).get("steps") or []

    def _canary(self, ro) -> dict:
        return ro["spec"]["strategy"]["canary"]

    def _routes(self, ro) -> list[str]:
        cfg = (self._canary(ro).get("trafficRouting") or {}).get("plugins", {}).get("argoproj-labs/gatewayAPI") or {}
        names = [cfg["httpRoute"]] if cfg.get("httpRoute") else []
        names += [r["name"] for r in cfg.get("httpRoutes") or []]
        return names

    def pod(self, pod_hash: str) -> str:
        return f"{self.name}-{pod_hash}-{pod_hash[:5]}"

    def _write_weight(self, ro, weight: int) -> None:
        canary, stable = self._canary(ro)["canaryService"], self._canary(ro)["stableService"]
        for name in self._routes(ro):
            route = self.api.get_object("HTTPRoute", name, self.ns)
            if route is None:
                continue
            before = json.dumps(route, sort_keys=True)
            for rule in route["spec"].get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    if ref.get("name") == canary:
                        ref["weight"] = weight
                    elif ref.get("name") == stable:
                        ref["weight"] = 100 - weight
            labels = route["metadata"].setdefault("labels", {})
            if weight > 0:
                labels["rollouts.argoproj.io/gatewayapi-canary"] = "in-progress"
            else:
                labels.pop("rollouts.argoproj.io/gatewayapi-canary", None)
            if json.dumps(route, sort_keys=True) != before:
                route["metadata"]["resourceVersion"] = self.api._next_rv()
                route["metadata"]["generation"] = route["metadata"].get("generation", 1) + 1
                self.log.append(f"route {name}: canary weight {weight}")

    def _select(self, ro, stable_hash: str, canary_hash: str) -> None:
        c = self._canary(ro)
        for svc_name, h in ((c["stableService"], stable_hash), (c["canaryService"], canary_hash)):
            svc = self.api.get_object("Service", svc_name, self.ns)
            if svc is None:
                continue
            sel = svc["spec"].setdefault("selector", {})
            if sel.get(HASH) != h:
                sel[HASH] = h
                svc["metadata"]["resourceVersion"] = self.api._next_rv()
            slice_obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                         "metadata": {"name": f"{svc_name}-x7k2p", "namespace": self.ns,
                                      "labels": {"kubernetes.io/service-name": svc_name,
                                                 "endpointslice.kubernetes.io/managed-by":
                                                     "endpointslice-controller.k8s.io"}},
                         "addressType": "IPv4",
                         "endpoints": [{"addresses": ["10.244.0.30"], "conditions": {"ready": True},
                                        "targetRef": {"kind": "Pod", "namespace": self.ns, "name": self.pod(h)}}],
                         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
            old = self.api.get_object("EndpointSlice", f"{svc_name}-x7k2p", self.ns)
            if old is None or old["endpoints"] != slice_obj["endpoints"]:
                self.api.put(slice_obj)

    def _weight_at(self, ro, index: int) -> int:
        for st in reversed(self._steps(ro)[:index + 1]):
            if "setWeight" in st:
                return int(st["setWeight"])
        return 0

    # -- the reconcile ------------------------------------------------------------------------

    def tick(self) -> None:
        with self.api._lock:
            self.ticks += 1
            ro = self._ro()
            if ro is None:
                return
            self._reconcile(ro)
            ro["metadata"]["resourceVersion"] = self.api._next_rv()

    def _reconcile(self, ro) -> None:
        st = ro.setdefault("status", {})
        steps = self._steps(ro)
        n = len(steps)
        gen = ro["metadata"].get("generation", 1)
        h = argo_hash(ro["spec"]["template"])
        labels = (ro["spec"]["template"].get("metadata") or {}).get("labels") or {}
        self.versions[h] = labels.get("version", "")
        annotations = ro["metadata"].setdefault("annotations", {})
        st["observedGeneration"] = str(gen)
        if st.get("currentPodHash") != h:                       # a new revision
            annotations["rollout.argoproj.io/revision"] = str(int(annotations.get("rollout.argoproj.io/revision", "0")) + 1)
            for k in ("pauseConditions", "abortedAt", "promoteFull"):
                st.pop(k, None)
            st.update(abort=False, controllerPause=False, currentPodHash=h,
                      canary={"currentStepAnalysisRunStatus": None})
            self._ready = set()
            if not st.get("stableRS"):
                st.update(stableRS=h, currentStepIndex=n)
                self.log.append(f"initial deploy {h}")
            elif st["stableRS"] == h:
                st["currentStepIndex"] = n                      # "Rollback to stable ReplicaSets"
                self.log.append(f"back to the stable ReplicaSet {h}: steps skipped")
            else:
                st["currentStepIndex"] = 0
                self.log.append(f"revision {annotations['rollout.argoproj.io/revision']}: {h}")
            return self._publish(ro, "more replicas need to be updated" if st["stableRS"] != h else "")
        stable, cur = st["stableRS"], st["currentPodHash"]
        if st.get("promoteFull") and stable != cur:
            for k in ("pauseConditions", "abortedAt", "promoteFull"):
                st.pop(k, None)
            st.update(abort=False, controllerPause=False, currentStepIndex=n)
            self.log.append("promote full")
        if stable == cur:
            st.pop("promoteFull", None)
            return self._publish(ro, "")
        if st.get("abort"):
            if not st.get("abortedAt"):                         # aborted by the user
                self._abort_message = ""
                st["abortedAt"] = _rfc3339(self.now())
                st["currentStepIndex"] = 0
                st.pop("pauseConditions", None)
                st["controllerPause"] = False
                self.log.append("abort (user)")
            return self._publish(ro, "")
        if st.get("abortedAt"):                                 # retry: abort cleared by the user
            st.pop("abortedAt", None)
            st["currentStepIndex"] = 0
            st["canary"]["currentStepAnalysisRunStatus"] = None
            self._ready = set()
            self.log.append("retry")
        idx = self._routed = st.get("currentStepIndex") or 0   # traffic follows the index the reconcile began at
        if idx >= n:                                            # every step done: promote
            st["stableRS"] = cur
            st["currentStepIndex"] = n
            st["canary"]["currentStepAnalysisRunStatus"] = None
            self.log.append(f"promoted {cur}")
            return self._publish(ro, "")
        step = steps[idx]
        kind = next(iter(step))
        conds = st.get("pauseConditions") or []
        if kind == "setWeight":
            if (cur, idx) not in self._ready:
                self._ready.add((cur, idx))
                return self._publish(ro, "more replicas need to be updated")
            self._next(st, idx, "setWeight")
        elif kind == "pause":
            duration = (step["pause"] or {}).get("duration")
            cond = next((c for c in conds if c["reason"] == "CanaryPauseStep"), None)
            if cond is None and not (st.get("controllerPause") and duration is None):
                st["pauseConditions"] = conds + [{"reason": "CanaryPauseStep", "startTime": _rfc3339(self.now())}]
                st["controllerPause"] = True
                self._pause_started = self.now()
                self.log.append(f"pause at step {idx}")
            elif duration is not None and cond is not None and self.now() - self._pause_started >= _duration(duration):
                st["pauseConditions"] = [c for c in conds if c["reason"] != "CanaryPauseStep"] or None
                if not st["pauseConditions"]:
                    st.pop("pauseConditions")
                    st["controllerPause"] = False
                self._next(st, idx, "pause")
            elif duration is None and cond is None:             # promoted: pauseConditions cleared
                st["controllerPause"] = False
                self._next(st, idx, "pause")
        elif kind == "analysis":
            if any(c["reason"] == "InconclusiveAnalysisRun" for c in conds):
                return self._publish(ro, "")
            self._analysis_step(ro, st, idx, step["analysis"])
        else:
            self._next(st, idx, kind)
        return self._publish(ro, "")

    def _next(self, st, idx: int, what: str) -> None:
        st["currentStepIndex"] = idx + 1
        st["canary"]["currentStepAnalysisRunStatus"] = None
        self.log.append(f"step {idx} ({what}) completed")

    def _metrics(self, ref: dict) -> list[str]:
        names = []
        for t in ref.get("templates") or []:
            tpl = self.api.get_object("AnalysisTemplate", t["templateName"], self.ns)
            names += [m["name"] for m in (tpl or {}).get("spec", {}).get("metrics", [])]
        return names

    def _analysis_step(self, ro, st, idx: int, ref: dict) -> None:
        cur = st["currentPodHash"]
        rev = ro["metadata"]["annotations"]["rollout.argoproj.io/revision"]
        current = st["canary"].get("currentStepAnalysisRunStatus")
        run = self.api.get_object("AnalysisRun", current["name"], self.ns) if current else None
        if run is None:
            name = f"{self.name}-{cur}-{rev}-{idx}"
            if self.api.get_object("AnalysisRun", name, self.ns) is not None:   # a retry: collision counter
                self._ar_seq += 1
                name = f"{name}.{self._ar_seq}"
            script = self.analysis.get(idx)
            if script is None:
                script = [(m, "[1]", "Successful") for m in self._metrics(ref)]
            run = self.api.put({
                "apiVersion": ROLLOUT_API, "kind": "AnalysisRun",
                "metadata": {"name": name, "namespace": self.ns,
                             "labels": {"rollout-type": "Step", "step-index": str(idx), HASH: cur,
                                        **(ro["spec"].get("selector") or {}).get("matchLabels", {})},
                             "annotations": {"rollout.argoproj.io/revision": rev},
                             "ownerReferences": [{"apiVersion": ROLLOUT_API, "kind": "Rollout", "name": self.name,
                                                  "uid": ro["metadata"].get("uid"), "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "spec": {"metrics": [{"name": m} for m in dict.fromkeys(x[0] for x in script)],
                         "args": [{"name": "canary-hash", "value": cur}]},
                "status": {"phase": "Running", "startedAt": _rfc3339(self.now()),
                           "metricResults": []}})
            self._scripts[name] = list(script)
            st["canary"]["currentStepAnalysisRunStatus"] = {"name": name, "status": "Running"}
            self.log.append(f"AnalysisRun {name} created")
            return
        status = run["status"]
        if status["phase"] == "Running":
            script = self._scripts.setdefault(run["metadata"]["name"], [])
            if script:
                metric, value, phase = script.pop(0)
                mr = next((r for r in status["metricResults"] if r["name"] == metric), None)
                if mr is None:
                    mr = {"name": metric, "phase": "Running", "measurements": [], "count": 0}
                    status["metricResults"].append(mr)
                stamp = _rfc3339(self.now())
                mr["measurements"].append({"phase": phase, "startedAt": stamp, "finishedAt": stamp, "value": value})
                mr["count"] += 1
                key = {"Successful": "successful", "Failed": "failed", "Inconclusive": "inconclusive",
                       "Error": "error"}[phase]
                mr[key] = mr.get(key, 0) + 1
                if phase != "Successful":
                    mr["phase"] = phase
                    limit = {"Failed": "failed (1) > failureLimit (0)",
                             "Inconclusive": "inconclusive (1) > inconclusiveLimit (0)",
                             "Error": "consecutiveErrors (5) > consecutiveErrorLimit (4)"}[phase]
                    status["message"] = f'Metric "{metric}" assessed {phase} due to {limit}'
                    status["phase"] = phase
            if status["phase"] == "Running" and not script:
                for mr in status["metricResults"]:
                    mr["phase"] = "Successful"
                status["phase"] = "Successful"
            run["metadata"]["resourceVersion"] = self.api._next_rv()
        phase = status["phase"]
        st["canary"]["currentStepAnalysisRunStatus"] = {"name": run["metadata"]["name"], "status": phase,
                                                        **({"message": status["message"]} if status.get("message") else {})}
        if phase == "Successful":
            self._next(st, idx, "analysis")
        elif phase in ("Failed", "Error"):
            st["abort"] = True
            self._abort_message = status.get("message", "")
            st["abortedAt"] = _rfc3339(self.now())
            st["currentStepIndex"] = 0
            self.log.append(f"abort: {self._abort_message}")
        elif phase == "Inconclusive":
            st["pauseConditions"] = (st.get("pauseConditions") or []) + [
                {"reason": "InconclusiveAnalysisRun", "startTime": _rfc3339(self.now())}]
            st["controllerPause"] = True
            self.log.append(f"inconclusive at step {idx}")

    def _publish(self, ro, progressing: str) -> None:
        """Weights, Services and the phase/message/conditions, as the reconcile ends."""
        st = ro["status"]
        steps = self._steps(ro)
        n = len(steps)
        stable, cur = st["stableRS"], st["currentPodHash"]
        aborted = bool(st.get("abort"))
        promoted = stable == cur
        idx = min(self._routed if self._routed is not None else (st.get("currentStepIndex") or 0), n - 1)
        self._routed = None
        if promoted or aborted or n == 0:
            weight = 0
        elif progressing:        # the canary pods are not ready: the previous setWeight's weight
            weight = self._weight_at(ro, idx - 1) if idx else 0
        else:
            weight = self._weight_at(ro, idx)
        self._write_weight(ro, weight)
        self._select(ro, stable, stable if (promoted or aborted) else cur)
        rev = ro["metadata"]["annotations"].get("rollout.argoproj.io/revision", "1")
        conds = [{"type": "Available", "status": "True", "reason": "AvailableReason",
                  "message": "Rollout has minimum availability"}]
        if aborted:
            message = f"Rollout aborted update to revision {rev}" + (f": {self._abort_message}" if self._abort_message else "")
            conds.append({"type": "Progressing", "status": "False", "reason": "RolloutAborted", "message": message})
            phase, text = "Degraded", f"RolloutAborted: {message}"
        elif ro["spec"].get("paused"):
            phase, text = "Paused", "manually paused"
        elif st.get("pauseConditions"):
            phase, text = "Paused", st["pauseConditions"][0]["reason"]
            conds.append({"type": "Paused", "status": "True", "reason": "RolloutPaused", "message": "Rollout is paused"})
        elif not promoted:
            phase, text = "Progressing", progressing or "waiting for all steps to complete"
        else:
            phase, text = "Healthy", ""
            conds.append({"type": "Healthy", "status": "True", "reason": "RolloutHealthy", "message": "Rollout is healthy"})
        for c in conds:
            c.update(lastTransitionTime=_rfc3339(self.now()), lastUpdateTime=_rfc3339(self.now()))
        st.update(phase=phase, message=text, conditions=conds, replicas=2 if not promoted else 1,
                  updatedReplicas=1, readyReplicas=2 if not promoted else 1,
                  availableReplicas=2 if not promoted else 1, HPAReplicas=2 if not promoted else 1,
                  selector=",".join(f"{k}={v}" for k, v in ((ro["spec"].get("selector") or {}).get("matchLabels") or {}).items()))
        st["canary"]["weights"] = {
            "canary": {"podTemplateHash": cur, "serviceName": self._canary(ro)["canaryService"], "weight": weight},
            "stable": {"podTemplateHash": stable, "serviceName": self._canary(ro)["stableService"],
                       "weight": 100 - weight}}


class RolloutGateway:
    """A data plane in front of the Rollout's pods on 127.0.0.1: each request for ``host``
    goes to a backendRef of the live HTTPRoute's first rule, picked by its weight (default 1,
    seeded), then to the pod of the ReplicaSet the Service's ``rollouts-pod-template-hash``
    selects; the pod answers as echo-basic does (its JSON report). ``errors``: version →
    share of answers that are 500 (the echo's report still in the body), seeded."""

    def __init__(self, api: FakeApiServer, controller: FakeArgoRollouts, route: str, host: str,
                 errors: dict[str, float] | None = None, seed: int = 0):
        import random
        from http.server import BaseHTTPRequestHandler

        self.api, self.controller, self.host = api, controller, host
        self.route_ns, self.route_name = route.split("/")
        self.errors = dict(errors or {})
        self.rng = random.Random(seed)
        self.seen: dict[str, int] = {}          # pod -> requests
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_GET(self):
                code, body = gw.answer(self.headers.get("Host", ""), self.path, dict(self.headers.items()))
                data = json.dumps(body).encode() if isinstance(body, dict) else body
                self.send_response(code)
                self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            request_queue_size = 128     # clients send concurrently: no dropped connections
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]

    def answer(self, host: str, path: str, headers: dict):
        if host.split(":")[0] != self.host:
            return 404, b"404 page not found\n"
        with self.api._lock:
            route = self.api.get_object("HTTPRoute", self.route_name, self.route_ns)
            refs = route["spec"]["rules"][0]["backendRefs"]
            weights = [int(r.get("weight", 1)) for r in refs]
            if sum(weights) == 0:
                return 500, b"no backend\n"
            ref = self.rng.choices(refs, weights=weights)[0]
            svc = self.api.get_object("Service", ref["name"], self.route_ns)
            pod_hash = ((svc or {}).get("spec", {}).get("selector") or {}).get(HASH)
            if pod_hash is None:
                return 503, b"no endpoints\n"
            pod = self.controller.pod(pod_hash)
            self.seen[pod] = self.seen.get(pod, 0) + 1
            version = self.controller.versions.get(pod_hash, "")
            fail = self.rng.random() < self.errors.get(version, 0.0)
        report = {"path": path, "host": host, "method": "GET", "proto": "HTTP/1.1",
                  "headers": {k: [v] for k, v in headers.items() if k.lower() != "host"},
                  "namespace": self.route_ns, "ingress": "", "service": "", "pod": pod}
        return (500 if fail else 200), report

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class FakeTime:
    """``now()`` and ``sleep(s)`` for a run under test: sleeping advances the clock by ``s``
    (at least ``min_step``) and lets the controller reconcile ``ticks`` times (more than
    once: steps pass between two reads of the Rollout)."""

    def __init__(self, controller: FakeArgoRollouts | None = None, min_step: float = 1.0, ticks: int = 1):
        self.t = 0.0
        self.controller = controller
        self.min_step = min_step
        self.ticks = ticks
        self.sleeps = 0
        if controller is not None:
            controller.now = self.now

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        step = max(float(seconds), self.min_step)
        for _ in range(self.ticks):
            self.t += step / self.ticks
            if self.controller is not None:
                self.controller.tick()


class ControllerThread:
    """The controller reconciling in the background every ``every`` real seconds, its own
    clock advancing ``seconds_per_tick`` each time (for code that sleeps for real, such as
    the ``gwlib`` command); ``also()`` runs after each reconcile (other controllers)."""

    def __init__(self, controller: FakeArgoRollouts, every: float = 0.005, seconds_per_tick: float = 5.0,
                 also=None):
        self.controller = controller
        self.every = every
        self.seconds_per_tick = seconds_per_tick
        self.also = also
        self.t = 0.0
        controller.now = lambda: self.t
        self._stop = threading.Event()
        self.errors: list[str] = []

    def _loop(self):
        import time as _time
        while not self._stop.is_set():
            try:
                with self.controller.api._lock:
                    self.t += self.seconds_per_tick
                    self.controller.tick()
                    if self.also is not None:
                        self.also()
            except Exception as exc:  # a bug in the fake: make it visible
                self.errors.append(repr(exc))
            _time.sleep(self.every)

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
