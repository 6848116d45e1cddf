"""What gwlib may touch in a cluster, decided before any API call.

* **Contexts**: only kube contexts named ``kind-*`` or ``k3d-*`` (the local clusters that
  ``kind`` and ``k3d`` create), plus the exact context names listed in
  ``GWLIB_ALLOW_CONTEXT`` (comma- or space-separated). The decision reads the kubeconfig as a
  file; nothing is loaded, no credential plugin runs and no request is sent before it.
* **Labels**: everything gwlib creates carries ``app.kubernetes.io/managed-by: gwlib``.
* **Namespaces**: gwlib writes only into namespaces it created (labelled as above), creates
  a namespace that does not exist yet (labelled), and never writes into ``default``,
  ``kube-*`` or a namespace someone else made.
* **Objects**: gwlib never changes or deletes an object it did not create (no label).

``gwlib cluster clean`` deletes exactly the objects with the label (see
:meth:`gwlib.cluster.ClusterConnection.clean`).
"""
from __future__ import annotations

import fnmatch
import os
import re

from .errors import ClusterError, ContextRefused

MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGED_VALUE = "gwlib"
#: label selector of everything gwlib created
SELECTOR = f"{MANAGED_LABEL}={MANAGED_VALUE}"
#: contexts allowed without asking: the clusters kind and k3d create on this machine
DEFAULT_ALLOWED = ("kind-*", "k3d-*")
ALLOW_ENV = "GWLIB_ALLOW_CONTEXT"
#: namespaces gwlib never writes into, whoever created them
RESERVED_NAMESPACES = ("default",)
RESERVED_PREFIXES = ("kube-",)


def allowed_names(env: dict | None = None) -> list[str]:
    """The context names ``GWLIB_ALLOW_CONTEXT`` adds to the default patterns."""
    raw = (env if env is not None else os.environ).get(ALLOW_ENV, "")
    return [n for n in re.split(r"[\s,]+", raw) if n]


def is_allowed(context: str, env: dict | None = None) -> bool:
    if not context:
        return False
    if any(fnmatch.fnmatchcase(context, p) for p in DEFAULT_ALLOWED):
        return True
    return context in allowed_names(env)


def check_context(context: str, env: dict | None = None) -> None:
    """Raise :class:`ContextRefused` unless gwlib may use ``context``."""
    if not is_allowed(context, env):
        extra = allowed_names(env)
        also = f" or one named in {ALLOW_ENV} ({', '.join(extra)})" if extra else ""
        raise ContextRefused(
            f"kube context {context!r} is not allowed: gwlib uses only local clusters "
            f"({', '.join(DEFAULT_ALLOWED)}){also}; to use this one anyway, set "
            f"{ALLOW_ENV}={context}")


def kubeconfig_path(path: str | None = None, env: dict | None = None) -> str:
    """The kubeconfig file(s) to read: ``path``, else ``KUBECONFIG`` (may list several,
    separated by ``os.pathsep``), else ``~/.kube/config``."""
    env = env if env is not None else os.environ
    return path or env.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def resolve_context(context: str | None = None, kubeconfig: str | None = None,
                    env: dict | None = None) -> tuple[str, str]:
    """(context name, kubeconfig path) — ``context``, else ``GWLIB_CONTEXT``, else the
    kubeconfig's current context — checked against the allowlist. Reads the kubeconfig as
    data only (no credential plugin runs, no request is sent)."""
    env = env if env is not None else os.environ
    path = kubeconfig_path(kubeconfig, env)
    files = [p for p in path.split(os.pathsep) if p]
    if not any(os.path.exists(p) for p in files):
        raise ClusterError(f"no kubeconfig at {path}: create a cluster with scripts/cluster-up.sh "
                           "(or set KUBECONFIG)")
    try:
        from kubernetes.config.kube_config import list_kube_config_contexts
        contexts, current = list_kube_config_contexts(config_file=path)
    except Exception as exc:  # noqa: BLE001 - an unreadable kubeconfig is one line, not a traceback
        raise ClusterError(f"cannot read the kubeconfig {path}: {str(exc).splitlines()[0]}") from None
    names = [c.get("name") for c in contexts or [] if isinstance(c, dict)]
    name = context or env.get("GWLIB_CONTEXT") or (current or {}).get("name")
    if not name:
        raise ClusterError(f"the kubeconfig {path} has no current context: pass context=... "
                           f"(it has {', '.join(names) or 'none'})")
    if name not in names:
        raise ClusterError(f"the kubeconfig {path} has no context {name!r} "
                           f"(it has {', '.join(names) or 'none'})")
    check_context(name, env)
    return name, path


def is_managed(obj: dict | None) -> bool:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_LABEL) == MANAGED_VALUE


def reserved_namespace(name: str) -> bool:
    return name in RESERVED_NAMESPACES or name.startswith(RESERVED_PREFIXES)


def with_label(obj: dict) -> dict:
    """A copy of ``obj`` with gwlib's label in ``metadata.labels``."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels[MANAGED_LABEL] = MANAGED_VALUE
    meta["labels"] = labels
    out["metadata"] = meta
    return out
