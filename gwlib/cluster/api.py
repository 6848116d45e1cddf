"""A small dynamic client on the ``kubernetes`` package's own ``ApiClient``.

Any kind, CRDs included: the resource (plural, namespaced) of a group/version/kind comes
from the API server's discovery document (``GET /apis/{group}/{version}``, read once per
group/version), as ``kubectl`` finds it. Requests go through
``ApiClient.param_serialize`` → ``ApiClient.call_api`` → ``ApiClient.response_deserialize``
— the same path as every generated ``CoreV1Api`` method (``ApiClient.call_api`` alone with
clients older than the current generator) — so authentication, TLS and
proxies follow the kubeconfig; responses are read into the client's own models where there
is one (``V1APIResourceList``, ``V1Status``, ``V1PodList``, ``V1EndpointSliceList``) and
kept as JSON objects for custom resources.

Writes:

* :meth:`Api.apply` — server-side apply (``PATCH``, ``Content-Type:
  application/apply-patch+yaml``, ``fieldManager=gwlib``, ``force=true``), optionally as a
  dry run (``dryRun=All``);
* :meth:`Api.patch` — JSON Patch (``application/json-patch+json``) or JSON Merge Patch
  (``application/merge-patch+json``), also on a subresource (``status``);
* :meth:`Api.delete` — with a propagation policy.

Every error becomes a :class:`~gwlib.cluster.errors.ClusterError` whose line is what gwlib
was doing plus the API's own ``Status.message``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ClusterError, NotServed, from_api_exception

FIELD_MANAGER = "gwlib"


@dataclass(frozen=True)
class Resource:
    """One API resource: where objects of a kind live."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def describe(kind: str, namespace: str | None, name: str | None) -> str:
    if not name:
        return kind
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


class Api:
    """Requests to one API server through a configured ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client, field_manager: str = FIELD_MANAGER, timeout: float = 30.0,
                 where: str = "") -> None:
        self.client = api_client
        self.field_manager = field_manager
        self.timeout = timeout
        self.where = where  # "context kind-gwlib (https://127.0.0.1:6443)", for messages
        self._discovery: dict[str, Any] = {}

    # -- the transport --------------------------------------------------------------------

    def request(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None,
                body: Any = None, content_type: str | None = None, accept: str = "application/json",
                response_type: str | None = "object", doing: str = "", timeout: float | None = None) -> Any:
        """One API request; the deserialized body (``response_type``: ``"object"`` for JSON
        as dicts, a model name such as ``"V1PodList"``, ``"bytes"`` for raw data)."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        doing = doing or f"{method} {path}"
        query = [(k, ("true" if v else "false") if isinstance(v, bool) else v) for k, v in (query or [])]
        try:
            if hasattr(self.client, "param_serialize"):   # the client's current generator
                serialized = self.client.param_serialize(
                    method=method, resource_path=path, query_params=query,
                    header_params=headers, body=body, auth_settings=["BearerToken"])
                response = self.client.call_api(*serialized, _request_timeout=timeout or self.timeout)
                response.read()
                types = {"2XX": response_type} if response_type else {}
                return self.client.response_deserialize(response_data=response, response_types_map=types).data
            # kubernetes < 35: the python-legacy generator's call_api
            raw = response_type == "bytes"
            data = self.client.call_api(
                path, method, path_params={}, query_params=query, header_params=headers, body=body,
                response_type=None if raw else response_type, auth_settings=["BearerToken"],
                _return_http_data_only=True, _preload_content=not raw,
                _request_timeout=timeout or self.timeout)
            return data.data if raw else data
        except ApiException as exc:
            raise from_api_exception(exc, doing) from None
        except ClusterError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, TLS, DNS: one line
            raise ClusterError(f"{doing}: cannot reach the API server{' of ' + self.where if self.where else ''}: "
                               f"{_reason(exc)}") from None

    # -- discovery ------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        """The resource serving ``kind`` at ``api_version``; a clear error when the cluster
        does not serve it (a CRD that is not installed, a version it does not serve)."""
        group, version = split_api_version(api_version)
        listing = self._discovery.get(api_version)
        if listing is None:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = self.request("GET", path, response_type="V1APIResourceList",
                                       doing=f"discover {api_version}")
            except ClusterError as exc:
                if exc.status == 404:
                    raise NotServed(
                        f"the cluster does not serve {api_version} (needed for {kind}): "
                        + _install_hint(group)) from None
                raise
            self._discovery[api_version] = listing
        for r in listing.resources or []:
            if r.kind == kind and "/" not in r.name:
                return Resource(group, version, kind, r.name, bool(r.namespaced))
        raise NotServed(f"the cluster serves {api_version} but not {kind} in it: " + _install_hint(group))

    def served(self, api_version: str, kind: str) -> bool:
        try:
            self.resource(api_version, kind)
            return True
        except NotServed:
            return False

    # -- reads ----------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str | None, name: str, *, missing_ok: bool = False) -> dict | None:
        try:
            return self.request("GET", res.path(namespace, name),
                                doing=f"get {describe(res.kind, namespace if res.namespaced else None, name)}")
        except ClusterError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def list(self, res: Resource, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        query = [("labelSelector", label_selector)] if label_selector else []
        data = self.request("GET", res.path(namespace), query=query,
                            doing=f"list {res.plural}" + (f" in {namespace}" if namespace else ""))
        items = (data or {}).get("items") or []
        for item in items:  # list items carry no apiVersion/kind: put them back
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        return items

    # -- writes ---------------------------------------------------------------------------

    def apply(self, res: Resource, obj: dict, *, dry_run: bool = False) -> dict:
        """Server-side apply of ``obj`` (field manager ``gwlib``, conflicts forced)."""
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") if res.namespaced else None
        query: list[tuple[str, Any]] = [("fieldManager", self.field_manager), ("force", True)]
        if dry_run:
            query.append(("dryRun", "All"))
        # a dict body: the client sends it as JSON (JSON is YAML) for application/apply-patch+yaml
        return self.request("PATCH", res.path(ns, meta.get("name")), query=query, body=obj,
                            content_type="application/apply-patch+yaml",
                            doing=("dry-run apply " if dry_run else "apply ") + describe(res.kind, ns, meta.get("name")))

    def patch(self, res: Resource, namespace: str | None, name: str, body: Any, *,
              patch_type: str = "merge", subresource: str | None = None, doing: str = "") -> dict:
        """``patch_type``: ``"json"`` (a list of RFC 6902 operations) or ``"merge"`` (RFC 7386)."""
        content_type = {"json": "application/json-patch+json",
                        "merge": "application/merge-patch+json"}[patch_type]
        ns = namespace if res.namespaced else None
        return self.request("PATCH", res.path(ns, name, subresource), body=body, content_type=content_type,
                            query=[("fieldManager", self.field_manager)],
                            doing=doing or f"patch {describe(res.kind, ns, name)}"
                            + (f" ({subresource})" if subresource else ""))

    def delete(self, res: Resource, namespace: str | None, name: str, *, missing_ok: bool = True,
               propagation: str = "Background") -> bool:
        """Delete one object; False when it was already gone (and ``missing_ok``)."""
        ns = namespace if res.namespaced else None
        try:
            self.request("DELETE", res.path(ns, name), body={"propagationPolicy": propagation},
                         content_type="application/json", doing=f"delete {describe(res.kind, ns, name)}")
            return True
        except ClusterError as exc:
            if missing_ok and exc.status == 404:
                return False
            raise

    # -- the API server proxy -------------------------------------------------------------

    def pod_proxy(self, namespace: str, pod: str, port: int, path: str, timeout: float = 10.0) -> str:
        """``GET /api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`` as text — how
        ``kubectl get --raw`` reads a pod's admin endpoint without a port-forward."""
        raw = self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}",
                           accept="text/plain, */*", response_type="bytes", timeout=timeout,
                           doing=f"read {path} of pod {namespace}/{pod}:{port}")
        return raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw or "")


    def service_proxy(self, namespace: str, service: str, port: int, path: str,
                      query: list[tuple[str, Any]] | None = None, timeout: float = 15.0) -> str:
        """``GET /api/v1/namespaces/{ns}/services/{service}:{port}/proxy/{path}`` as text: a
        Service inside the cluster (linkerd-viz's Prometheus) reached through the API server."""
        raw = self.request("GET", f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}",
                           query=query, accept="application/json, */*", response_type="bytes", timeout=timeout,
                           doing=f"read {path} of service {namespace}/{service}:{port}")
        return raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw or "")


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a urllib3/socket error."""
    seen = exc
    for _ in range(6):
        nxt = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen or isinstance(nxt, str):
            break
        seen = nxt
    text = str(seen) or type(seen).__name__
    if "Connection refused" in text or isinstance(seen, ConnectionRefusedError):
        return "connection refused (is the cluster running? scripts/cluster-up.sh starts one)"
    return text.splitlines()[0][:200]


def _install_hint(group: str) -> str:
    if group.startswith("gateway.networking"):
        return "install the Gateway API CRDs (scripts/cluster-up.sh does)"
    if group == "argoproj.io":
        return "install Argo Rollouts (scripts/cluster-up.sh does)"
    if group.endswith("linkerd.io"):
        return "install Linkerd (scripts/cluster-up.sh does)"
    return "is the CRD installed?"
