"""Mermaid topology diagrams generated from resources.

``topology(objects)`` draws GatewayClass → Gateway → listeners → routes → Services as a
Mermaid flowchart. JupyterLab (≥ 4.1) renders Mermaid inside Markdown output, so in a
notebook the diagram simply appears; ``.source`` is the Mermaid text for anywhere else.

The diagram shows what the manifests *declare* (parentRefs, backendRefs), coloured by the
persona who owns each object: infrastructure provider (GatewayClass), cluster operator
(Gateway and listeners), application developer (Routes and Services).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "UDPRoute", "TLSRoute")

_STYLES = """\
  classDef infra fill:#fde2c8,stroke:#c2410c,color:#111
  classDef operator fill:#dbeafe,stroke:#1d4ed8,color:#111
  classDef developer fill:#dcfce7,stroke:#15803d,color:#111
  classDef missing fill:#f3f4f6,stroke:#9ca3af,stroke-dasharray: 4 3,color:#555"""


@dataclass(frozen=True)
class Diagram:
    """A Mermaid diagram; shows itself as a rendered diagram in JupyterLab."""

    source: str

    def _repr_markdown_(self) -> str:
        return f"```mermaid\n{self.source}\n```"

    def __str__(self) -> str:
        return self.source

    __repr__ = __str__


def _id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(p for p in parts if p))


def _label(*lines: str) -> str:
    text = "<br/>".join(line.replace('"', "'") for line in lines if line)
    return f'["{text}"]'


def topology(objects: list) -> Diagram:
    """GatewayClass → Gateway → listeners → routes → Services, as declared by ``objects``."""
    by_kind: dict[str, list] = {}
    for obj in objects:
        by_kind.setdefault(obj.kind, []).append(obj)
    lines = ["flowchart LR"]
    edges: list[str] = []
    services = {(s.namespace, s.name) for s in by_kind.get("Service", [])}
    drawn_services: set[str] = set()

    for gc in by_kind.get("GatewayClass", []):
        lines.append(f"  {_id('gc', gc.name)}{_label('GatewayClass ' + gc.name, gc.spec.controller_name)}:::infra")
    listener_ids: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for gw in by_kind.get("Gateway", []):
        gid = _id("gw", gw.namespace, gw.name)
        lines.append(f"  {gid}{_label(f'Gateway {gw.namespace}/{gw.name}')}:::operator")
        edges.append(f"  {_id('gc', gw.spec.gateway_class_name)} --> {gid}")
        for listener in gw.spec.listeners:
            lid = _id("l", gw.namespace, gw.name, listener.name)
            where = f"{listener.protocol} :{listener.port}"
            lines.append(f"  {lid}{_label('listener ' + listener.name, where, listener.hostname or '')}:::operator")
            edges.append(f"  {gid} --> {lid}")
            listener_ids.setdefault((gw.namespace, gw.name), []).append((listener.name, lid))

    for kind in ROUTE_KINDS:
        for route in by_kind.get(kind, []):
            rid = _id("r", kind, route.namespace, route.name)
            hosts = ", ".join(getattr(route.spec, "hostnames", None) or [])
            lines.append(f"  {rid}{_label(f'{kind} {route.namespace}/{route.name}', hosts)}:::developer")
            for ref in route.spec.parent_refs or []:
                if (ref.kind or "Gateway") != "Gateway":
                    sid = _id("svc", ref.namespace or route.namespace, ref.name)
                    edges.append(f"  {sid} -. mesh .-> {rid}")
                    continue
                key = (ref.namespace or route.namespace, ref.name)
                targets = [lid for name, lid in listener_ids.get(key, [])
                           if ref.section_name in (None, name)]
                if not targets:
                    missing = _id("gw", *key)
                    if not listener_ids.get(key):
                        lines.append(f"  {missing}{_label(f'Gateway {key[0]}/{key[1]}', '(not given)')}:::missing")
                    targets = [missing]
                edges.extend(f"  {t} --> {rid}" for t in targets)
            for rule in route.spec.rules or []:
                for backend in getattr(rule, "backend_refs", None) or []:
                    ns = backend.namespace or route.namespace
                    sid = _id("svc", ns, backend.name)
                    if sid not in drawn_services:
                        drawn_services.add(sid)
                        style = "developer" if (ns, backend.name) in services else "missing"
                        kind_name = backend.kind or "Service"
                        lines.append(f"  {sid}{_label(f'{kind_name} {ns}/{backend.name}')}:::{style}")
                    weight = getattr(backend, "weight", None)
                    port = f":{backend.port}" if backend.port else ""
                    text = f"{port} w={weight}" if weight not in (None, 1) else port
                    edges.append(f"  {rid} -->|{text.strip() or 'backend'}| {sid}" )
    seen: set[str] = set()
    unique_edges = [e for e in edges if not (e in seen or seen.add(e))]
    return Diagram("\n".join(lines + unique_edges + [_STYLES]))
