"""gwlib: teach, check and measure the Kubernetes Gateway API.

The public face (design §4.2) is small on purpose:

* :func:`load` — manifests (paths, folders, YAML strings, dicts) → typed resources;
* :func:`validate` — the problems the API server would report, one per line;
* :func:`explain` — documentation of any field, offline, like ``kubectl explain``;
* :func:`connect` — a connection (``lab``, ``reference`` or ``cluster``) with ``apply``,
  ``delete``, ``status``, ``request``/``send``, ``split``, ``explain``, ``set_weights``;
* :func:`mode` — the mode ``GWLIB_MODE`` selects (default ``lab``), checked as ``connect`` does;
* :func:`doctor` — what is installed: Python, gwlib, the Envoy and Traefik binaries,
  kubeconfig contexts.

Everything else is private to its module.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .problems import Problem  # noqa: E402
from .validation import InvalidManifest, load, validate  # noqa: E402


from .connection import connect, mode  # noqa: E402
from .fielddoc import explain  # noqa: E402
from .machine import doctor  # noqa: E402
from .portability import portability  # noqa: E402


__all__ = ["InvalidManifest", "Problem", "__version__", "connect", "doctor", "explain", "load", "mode", "portability", "validate"]
