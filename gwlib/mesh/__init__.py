"""The mesh (east/west): GAMMA routes, Linkerd resources, and version compatibility.

* :mod:`gwlib.mesh.inject` — who is meshed (``linkerd.io/inject`` on Namespaces and pod
  templates).
* :mod:`gwlib.mesh.linkerd` — Linkerd's own ``policy.linkerd.io`` HTTPRoute and its
  conversion to and from ``gateway.networking.k8s.io/v1``; the ``retry.linkerd.io/*`` and
  ``timeout.linkerd.io/*`` annotations.
* :mod:`gwlib.mesh.sidecars` — the lab's sidecars: Envoy standing in for linkerd2-proxy.
* :mod:`gwlib.compat` — which Gateway API versions Linkerd, Traefik and the Argo Rollouts
  plugin read (``gwlib compat check``).

GAMMA semantics themselves (Service parents, producer and consumer routes) live where the
north/south ones do: the controller (attachment, status), the IR (tables) and the reference
router (answers), so that both directions share one matching and precedence code.
"""
from __future__ import annotations

from .inject import Workload, workloads

__all__ = ["Workload", "workloads"]
