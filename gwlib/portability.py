"""``gwlib.portability``: the same requests through the reference router, Envoy and Traefik.

The talk's claim is that the Gateway API is "standardized across implementations". This
module turns it into a table a learner can check: every request is answered by each data
plane from the same manifests, and each answer is compared with the reference router's,
field by field. A difference is a finding to explain, never something to hide.

What is compared, and why:

* ``status``, ``location``, ``grpc_status``, the matched ``route`` and ``rule``;
* ``backend``: equal, or — when the rule splits traffic by weight — one of the backends the
  exact split gives a share to (a random pick cannot be compared pick by pick);
* what the backend received: method, host, path, and every request header the reference
  answer lists (values compared; names case-insensitively), and no header the reference
  answer does not have, except those a proxy adds on its own (X-Forwarded-For, ...);
* response headers the reference answer lists (e.g. from ResponseHeaderModifier, CORS).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from .connection import ReferenceConnection, answers_frame

ENGINES = ("reference", "envoy", "traefik")


@dataclass
class Comparison:
    request: dict
    answers: dict[str, dict]                       # engine -> answer
    differences: dict[str, list[str]] = field(default_factory=dict)  # engine -> what differs

    @property
    def agree(self) -> bool:
        return not any(self.differences.values())


@dataclass
class Portability:
    comparisons: list[Comparison]
    engines: tuple[str, ...]
    findings: dict[str, list] = field(default_factory=dict)  # engine -> apply-time findings

    @property
    def agreement(self) -> dict[str, float]:
        """Share of requests on which each data plane agrees with the reference."""
        n = len(self.comparisons) or 1
        return {e: sum(1 for c in self.comparisons if not c.differences.get(e)) / n
                for e in self.engines if e != "reference"}

    def to_frame(self):
        """One row per request: the reference status/backend and, per data plane, ✔ or
        what differs."""
        import pandas as pd
        rows = []
        for c in self.comparisons:
            ref = answers_frame([c.request], [c.answers["reference"]]).iloc[0].to_dict()
            row = {k: ref.get(k, "") for k in ("method", "port", "host", "path", "status", "backend")}
            for e in self.engines:
                if e != "reference":
                    row[e] = "✔" if not c.differences.get(e) else "; ".join(c.differences[e])
            rows.append(row)
        return pd.DataFrame(rows)


def _lower(d: dict | None) -> dict[str, str]:
    return {str(k).lower(): v for k, v in (d or {}).items()}


def compare(reference: dict, other: dict, split: dict[str, float] | None = None) -> list[str]:
    """What differs between another data plane's answer and the reference answer."""
    from .lab import PROXY_HEADERS

    out = []
    # A TCP/UDP/TLS-passthrough answer carries no headers, so which route answered cannot be
    # observed on a real data plane: only the backend can be compared there.
    l4 = other.get("backend") is not None and other.get("request") is None and "grpc_status" not in other
    for key in ("status", "location", "grpc_status", "route", "rule"):
        if l4 and key in ("route", "rule"):
            continue
        if key in reference or key in other:
            if reference.get(key) != other.get(key):
                out.append(f"{key} {other.get(key)!r} (reference {reference.get(key)!r})")
    if reference.get("error") and not other.get("error"):
        out.append(f"answered although the reference says: {reference['error']}")
    rb, ob = reference.get("backend"), other.get("backend")
    if split and len([k for k, p in split.items() if p > 0]) > 1:
        if ob is not None and f"{ob.get('namespace')}/{ob.get('name')}" not in split:
            out.append(f"backend {ob.get('namespace')}/{ob.get('name')} is not in the split {sorted(split)}")
        if ob is None and "500" not in split:
            out.append("no backend, but every share of the split has one")
    elif (rb or {}) != (ob or {}):
        fmt = lambda b: f"{b['namespace']}/{b['name']}:{b['port']}" if b else "none"  # noqa: E731
        out.append(f"backend {fmt(ob)} (reference {fmt(rb)})")
    rr, orq = reference.get("request") or {}, other.get("request") or {}
    if rr and orq:
        for key in ("method", "host", "path"):
            if rr.get(key) != orq.get(key):
                out.append(f"backend saw {key} {orq.get(key)!r} (reference {rr.get(key)!r})")
        want, got = _lower(rr.get("headers")), _lower(orq.get("headers"))
        for name, value in want.items():
            if got.get(name) != value:
                out.append(f"backend saw {name}: {got.get(name)!r} (reference {value!r})")
        extra = sorted(set(got) - set(want) - PROXY_HEADERS)
        if extra:
            out.append(f"backend saw extra header(s) {', '.join(extra)}")
    want, got = _lower(reference.get("headers")), _lower(other.get("headers"))
    for name, value in want.items():
        if name != "location" and got.get(name) != value:
            out.append(f"response {name}: {got.get(name)!r} (reference {value!r})")
    return out


def portability(resources: Any, requests: list[dict], engines: tuple[str, ...] = ENGINES,
                seed: int = 0) -> Portability:
    """Answer ``requests`` with every engine from the same ``resources`` and compare each
    data plane's answers with the reference router's."""
    from .lab import Lab, LabWarning

    ref = ReferenceConnection(seed=seed)
    ref.apply(resources)
    answers: dict[str, list[dict]] = {"reference": ref.send(requests)}
    splits = [ref.split(r) if "gateway" in r else {} for r in requests]
    findings: dict[str, list] = {}
    for engine in engines:
        if engine == "reference":
            continue
        with Lab(dataplane=engine, seed=seed) as lab, warnings.catch_warnings():
            warnings.simplefilter("ignore", LabWarning)  # collected in .findings instead
            lab.apply(resources)
            answers[engine] = lab.send(requests)
            findings[engine] = list(lab.findings)
    comparisons = []
    for i, req in enumerate(requests):
        per = {e: answers[e][i] for e in answers}
        diffs = {e: compare(per["reference"], per[e], splits[i]) for e in per if e != "reference"}
        comparisons.append(Comparison(req, per, diffs))
    return Portability(comparisons, tuple(e for e in engines if e in answers), findings)
