"""Who is in the mesh: Linkerd's proxy-injection rules over Namespaces and Deployments.

Linkerd injects its proxy (linkerd2-proxy) into a pod when the annotation
``linkerd.io/inject: enabled`` is on the pod (for a Deployment: its *pod template*,
``spec.template.metadata.annotations``) or on the pod's Namespace; ``disabled`` on the pod
opts it out of a meshed Namespace; ``ingress`` injects it in ingress mode (still meshed).
Pods in ``kube-system`` and ``cert-manager`` are never injected. Sources: Linkerd docs
``features/proxy-injection.md`` (https://linkerd.io/2-edge/features/proxy-injection/).

Two things a learner trips over, said in :attr:`Workload.reason`:

* the annotation on the Deployment's own ``metadata`` does nothing: the injector reads pods,
  so it must be on the pod template;
* injection happens when a pod is created: after annotating a Namespace, existing pods stay
  unmeshed until ``kubectl rollout restart``. (In the lab pods are created by ``apply``, so
  a change takes effect at once.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INJECT = "linkerd.io/inject"
#: Namespaces Linkerd never injects.
NEVER_INJECTED = ("kube-system", "cert-manager")


@dataclass
class Workload:
    """A Deployment and whether Linkerd would mesh its pods."""
    namespace: str
    name: str
    meshed: bool
    reason: str
    labels: dict[str, str] = field(default_factory=dict)   # pod template labels
    service_account: str = "default"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def identity(self) -> str:
        """The mTLS identity Linkerd gives the pods (from their ServiceAccount)."""
        return f"{self.service_account}.{self.namespace}.serviceaccount.identity.linkerd.cluster.local"

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "workload": self.name, "meshed": self.meshed,
                "reason": self.reason, "identity": self.identity if self.meshed else None}


def _doc(obj: Any) -> dict:
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if to_dict is not None else {}


def namespace_annotations(objects: list) -> dict[str, dict[str, str]]:
    """namespace -> its annotations (Namespaces present in ``objects`` only)."""
    out: dict[str, dict[str, str]] = {}
    for o in objects:
        d = _doc(o)
        if d.get("kind") == "Namespace":
            meta = d.get("metadata") or {}
            out[meta.get("name") or ""] = dict(meta.get("annotations") or {})
    return out


def namespace_meshed(namespace: str, annotations: dict[str, dict[str, str]]) -> bool:
    """Whether new pods of ``namespace`` get a proxy by default (the Namespace annotation)."""
    if namespace in NEVER_INJECTED:
        return False
    return (annotations.get(namespace) or {}).get(INJECT) in ("enabled", "ingress")


def decide(namespace: str, pod_annotations: dict[str, str] | None, ns_annotations: dict[str, dict[str, str]],
           object_annotations: dict[str, str] | None = None) -> tuple[bool, str]:
    """(meshed, why) for a pod template in ``namespace``."""
    pod = (pod_annotations or {}).get(INJECT)
    ns = (ns_annotations.get(namespace) or {}).get(INJECT)
    if namespace in NEVER_INJECTED:
        return False, f"Linkerd never injects pods in {namespace}"
    if pod == "disabled":
        return False, f"pod template says {INJECT}: disabled"
    if pod in ("enabled", "ingress"):
        return True, f"pod template says {INJECT}: {pod}"
    if ns in ("enabled", "ingress"):
        return True, f"namespace {namespace} says {INJECT}: {ns}"
    if (object_annotations or {}).get(INJECT) in ("enabled", "ingress"):
        return False, (f"{INJECT} is on the Deployment's own metadata, which the injector never reads: "
                       "put it on spec.template.metadata.annotations")
    if ns == "disabled":
        return False, f"namespace {namespace} says {INJECT}: disabled"
    return False, f"no {INJECT} annotation on the pod template or on namespace {namespace}"


def workloads(objects: list) -> list[Workload]:
    """Every Deployment in ``objects`` with its mesh membership, sorted by namespace/name."""
    ns_ann = namespace_annotations(objects)
    out = []
    for o in objects:
        d = _doc(o)
        if d.get("kind") != "Deployment":
            continue
        meta = d.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        template = (d.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        meshed, why = decide(ns, tmeta.get("annotations"), ns_ann, meta.get("annotations"))
        sa = (template.get("spec") or {}).get("serviceAccountName") or "default"
        out.append(Workload(ns, meta.get("name") or "", meshed, why, dict(tmeta.get("labels") or {}), sa))
    out.sort(key=lambda w: w.key)
    return out
