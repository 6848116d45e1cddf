"""Ingress → Gateway API: semantics, conversion, the lost-in-translation report, and proof.

The talk opens with "Why not just use the Ingress resource?". This package makes the
answer concrete:

* :class:`IngressRouter` — which backend an Ingress controller (ingress-nginx or Traefik)
  picks for a request, following the Ingress spec and the provider's annotations;
* :func:`convert` — Ingresses (+ Services, Secrets, Traefik Middlewares) → Gateway,
  HTTPRoutes, GRPCRoutes, TLSRoutes, ReferenceGrants, and a :class:`Report` of everything
  that did not survive (``report.to_frame()``); ``gwlib convert`` is the same on the
  command line;
* :func:`equivalence` — for sample requests (yours, or derived from the Ingresses), the
  reference router on the converted objects must send each request where the Ingress
  controller would; differences the report predicted are marked as explained;
* :func:`comparison` — the talk's Ingress vs Gateway API comparison table;
* :func:`examples` — the realistic examples in ``data/ingress/``.

Semantics and choices: :mod:`gwlib.ingress.model` (what each provider does with an
Ingress), :mod:`gwlib.ingress.convert` (the shape of the output).
"""
from __future__ import annotations

from pathlib import Path

from .convert import Conversion, convert
from .equivalence import Equivalence, equivalence, sample_requests
from .model import PROVIDERS
from .report import Finding, Report
from .router import IngressRequestError, IngressRouter

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "ingress"


def examples():
    """The examples in ``data/ingress/`` as a DataFrame (name, provider, what it shows, folder)."""
    import csv

    import pandas as pd

    with open(DATA / "examples.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["folder"] = str(DATA / r["name"])
    return pd.DataFrame(rows, columns=["name", "provider", "shows", "folder"])


#: The talk's "Why not just use the Ingress resource?" comparison, row by row.
COMPARISON = [
    ("protocol support",
     "HTTP and HTTPS only (TLS terminated on 443); TCP/UDP through controller ConfigMaps, gRPC through "
     "annotations",
     "HTTP, HTTPS, gRPC (GRPCRoute), TLS passthrough (TLSRoute), TCP and UDP (TCPRoute, UDPRoute)"),
    ("traffic management",
     "host and path routing only; canaries, rewrites, redirects and timeouts need vendor annotations",
     "weighted backendRefs, header/query/method matches, redirects, rewrites, header changes, mirroring, "
     "timeouts in the spec"),
    ("portability",
     "only the basics are portable; every controller has its own annotations (ingress-nginx ~100)",
     "Core and Extended features behave the same everywhere, checked by conformance tests"),
    ("resource objects",
     "one Ingress (plus IngressClass) mixes infrastructure and application settings",
     "GatewayClass, Gateway and Routes: one per persona (infrastructure provider, cluster operator, "
     "application developer)"),
    ("routing rules",
     "rules in one object; merging Ingresses is controller-specific; backends in the same namespace",
     "routes attach to Gateways that decide who may attach; precedence is specified; cross-namespace "
     "references with ReferenceGrant"),
    ("extending capabilities",
     "annotations (untyped strings) and configuration snippets",
     "typed policy attachment and ExtensionRef filters; the API is still evolving (Ingress is frozen)"),
]


def comparison():
    """The talk's comparison of Ingress and Gateway API as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(COMPARISON, columns=["aspect", "Ingress", "Gateway API"]).set_index("aspect")


__all__ = ["PROVIDERS", "COMPARISON", "Conversion", "Equivalence", "Finding", "IngressRequestError",
           "IngressRouter", "Report", "comparison", "convert", "equivalence", "examples", "sample_requests"]
