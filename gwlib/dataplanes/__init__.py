"""Data planes: the IR (:mod:`gwlib.ir`) → a real proxy's configuration, and the running proxy.

CONTRACT shared by the Envoy driver (``gwlib.dataplanes.envoy``) and the Traefik driver
(``gwlib.dataplanes.traefik``); the lab (``gwlib.lab``) uses only this surface.

Translation is a pure function, tested with golden files:

    translate(ir, binding) -> Config       # Config.files: {relative path: text}

Running is a class:

    dp = EnvoyDataPlane(workdir, supervisor)     # or TraefikDataPlane(...)
    dp.apply(ir, binding) -> list[Finding]       # first call starts the proxy; later calls
                                                 # reprogram it live (atomic file swaps) and
                                                 # return once the new config is serving
    dp.close()

Neither re-derives Gateway API semantics: route order, hostname precedence, weights
(invalid shares = 500), filters, redirects and defaults all come decided in the IR.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Upstream:
    """Where a Service port's endpoints really are (an echo backend on 127.0.0.1)."""
    namespace: str
    name: str
    port: int                   # the Service port named by backendRefs
    local_port: int             # where the echo endpoint listens
    protocol: str = "http"      # "http" (HTTP/1.1) | "h2c" (HTTP/2 cleartext, gRPC) | "tcp" | "udp"
    host: str = "127.0.0.1"

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.namespace, self.name, self.port)


@dataclass
class Binding:
    """How the IR is laid onto this machine.

    ``listeners[(gateway_key, port)]`` is the local 127.0.0.1 port that serves that Gateway
    port (every Gateway gets its own local ports, even when two use the same port number).
    ``upstreams[(ns, name, port)]`` locates each Service port. ``certificates`` maps
    ``"ns/secret"`` to (cert PEM path, key PEM path) for HTTPS/TLS listeners.
    """
    listeners: dict[tuple[str, int], int] = field(default_factory=dict)
    upstreams: dict[tuple[str, str, int], Upstream] = field(default_factory=dict)
    certificates: dict[str, tuple[str, str]] = field(default_factory=dict)
    admin_port: int | None = None


@dataclass(frozen=True)
class Finding:
    """Something a data plane cannot express exactly (said at apply time, never hidden)."""
    dataplane: str              # "envoy" | "traefik"
    route: str                  # "ns/name" ("" for listener-level findings)
    rule: int | None
    feature: str                # e.g. "RequestHeaderModifier.add"
    message: str
    severity: str = "warning"   # "warning" (approximated) | "error" (not served at all)


@dataclass
class Config:
    """A translated configuration: files to write (relative path -> text) and findings."""
    files: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


#: Response headers every data plane adds so the lab can tell which route and rule answered
#: (the lab strips them from answers, since a real Gateway does not send them).
ROUTE_HEADER = "X-Gwlib-Route"
RULE_HEADER = "X-Gwlib-Rule"
