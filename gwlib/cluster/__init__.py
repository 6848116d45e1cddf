"""Cluster mode: the same interface as the lab, answered by a real Kubernetes cluster.

    conn = gwlib.connect("cluster", context="kind-gwlib")   # or GWLIB_MODE=cluster

Start a local cluster with ``scripts/cluster-up.sh`` (kind, the Gateway API CRDs, Traefik,
Linkerd, Argo Rollouts with the Gateway API plugin) and remove it with
``scripts/cluster-down.sh``; ``gwlib cluster clean`` removes only what gwlib created.

The parts:

* :mod:`~gwlib.cluster.connection` — :class:`ClusterConnection` (apply, delete, status,
  wait, request/send/table/sample, split/explain, set_weights, Argo Rollouts, Linkerd
  metrics, clean);
* :mod:`~gwlib.cluster.safety` — which contexts, namespaces and objects gwlib may touch,
  decided before any API call;
* :mod:`~gwlib.cluster.api` — a small dynamic client on the ``kubernetes`` package's
  ``ApiClient`` (discovery, server-side apply, patches, the pod proxy);
* :mod:`~gwlib.cluster.echo` — the conformance echo server behind every Service;
* :mod:`~gwlib.cluster.rollouts` — the patches ``kubectl argo rollouts`` sends;
* :mod:`~gwlib.cluster.metrics` — linkerd2-proxy metrics (Prometheus text) as samples and
  golden metrics.

For the rollout engine (``gwlib.rollout``) the connection offers
``rollout_status(name) -> dict``, ``promote(name, full=False)``, ``abort(name)``,
``retry(name)`` and ``wait_rollout(name, phases, timeout)`` (each returns the status
summary of :func:`gwlib.cluster.rollouts.summary`), ``set_weights(route, weights)`` and
``scrape_proxies(namespace, selector) -> Scrape`` (samples labelled as a Prometheus scrape
labels them, so the AnalysisTemplates' query shapes select the same series) and
``prometheus_query(query, at=None) -> list`` (linkerd-viz's Prometheus through the API server:
the ``result`` of Prometheus' HTTP API, what Argo's Prometheus provider reads).
"""
from __future__ import annotations

from .connection import DEFAULT_PORTS, ClusterConnection
from .errors import ClusterError, ClusterTimeout, ClusterWarning, ContextRefused, NotServed, UnsafeObject
from .safety import MANAGED_LABEL, MANAGED_VALUE, SELECTOR, check_context, is_allowed

__all__ = ["DEFAULT_PORTS", "MANAGED_LABEL", "MANAGED_VALUE", "SELECTOR", "ClusterConnection", "ClusterError",
           "ClusterTimeout", "ClusterWarning", "ContextRefused", "NotServed", "UnsafeObject", "check_context", "is_allowed"]
