"""Definitions shared by the echo server process and its Python clients (stdlib only, so
the server process starts fast)."""
from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("http", "grpc", "tcp", "udp")
ECHO_SET_HEADER = "X-Echo-Set-Header"
GRPC_SERVICE = "gwlib.echo.EchoService"
GRPC_ECHO_METHOD = f"/{GRPC_SERVICE}/Echo"
TOKEN_ENV = "GWLIB_ECHO_TOKEN"
TOKEN_HEADER = "X-Gwlib-Token"

# gRPC status codes used here
GRPC_OK = 0
GRPC_INTERNAL = 13
GRPC_UNAVAILABLE = 14


@dataclass(frozen=True)
class EchoEndpoint:
    """One echo endpoint: a pod of a Service, answering on one Service port.

    ``port`` is the Service port (what a backendRef names), not the local port the
    endpoint listens on (the fleet assigns that). ``protocol``: ``http`` (HTTP/1.1 and h2c
    on the same port; gRPC requests are answered too), ``grpc`` (gRPC over h2c; plain
    HTTP requests get the HTTP echo), ``tcp`` or ``udp``. ``version`` is the pod's
    ``version`` label (faults and stats are kept per version).
    """

    namespace: str
    service: str
    port: int
    protocol: str = "http"
    pod: str = ""
    version: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")
        if not self.pod:
            object.__setattr__(self, "pod", f"{self.service}-{self.version or 'pod'}-0")
        object.__setattr__(self, "port", int(self.port))

    @property
    def key(self) -> str:
        """``namespace/service:port/protocol/pod``, unique per endpoint."""
        return f"{self.namespace}/{self.service}:{self.port}/{self.protocol}/{self.pod}"

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "service": self.service, "port": self.port,
                "protocol": self.protocol, "pod": self.pod, "version": self.version}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EchoEndpoint:
        return cls(str(d["namespace"]), str(d["service"]), int(d["port"]),
                   str(d.get("protocol", "http")), str(d.get("pod") or ""), str(d.get("version") or ""))


_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_CANON: dict[str, str] = {}


def canonical_header_name(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey`` (what echo-basic reports):
    ``x-env`` -> ``X-Env``; names that are not tokens are left unchanged."""
    c = _CANON.get(name)
    if c is None:
        if _TOKEN.match(name):
            c = "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))
        else:
            c = name
        if len(_CANON) < 10000:
            _CANON[name] = c
    return c


def parse_set_header(values: list[str]) -> list[tuple[str, str]]:
    """``X-Echo-Set-Header: Name:value,Other:value`` (each header line) -> response headers
    to set, in order; a name given twice gets its values joined with ``,`` (as echo-basic
    does). Entries without a colon or a name are ignored (as gwlib's echo model does)."""
    out: dict[str, str] = {}
    lower: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            name, sep, val = part.strip().partition(":")
            name = name.strip()
            if not sep or not name:
                continue
            val = val.strip()
            k = name.lower()
            if k in lower:
                out[lower[k]] += "," + val
            else:
                lower[k] = name
                out[name] = val
    return list(out.items())


# ----------------------------------------------------------------------------- faults

Z99 = 2.3263478740408408  # standard normal quantile at 0.99


def latency_sampler(spec: Any) -> Callable[[random.Random], float] | None:
    """A function ``rng -> milliseconds`` for a latency spec, or None for no latency.

    Specs: a number (fixed ms) or a dict with ``distribution``:

    * ``fixed``: ``ms``;
    * ``uniform``: ``min_ms``, ``max_ms``;
    * ``normal``: ``mean_ms`` and ``stddev_ms`` or ``p99_ms`` (truncated at 0);
    * ``lognormal``: ``mean_ms`` and ``p99_ms`` (or ``sigma``): the log-normal with that
      mean and 99th percentile (``p99_ms/mean_ms`` must be below ~14.9);
    * ``exponential``: ``mean_ms``.
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, (int, float)):
        ms = float(spec)
        if ms < 0 or math.isnan(ms):
            raise ValueError("latency_ms must be >= 0")
        return None if ms == 0 else (lambda rng: ms)
    if not isinstance(spec, Mapping):
        raise ValueError(f"latency spec must be a number or a mapping, not {type(spec).__name__}")
    dist = str(spec.get("distribution", "fixed")).lower()
    if dist == "fixed":
        ms = float(spec.get("ms", spec.get("mean_ms", 0)))
        return latency_sampler(ms)
    if dist == "uniform":
        lo, hi = float(spec["min_ms"]), float(spec["max_ms"])
        if not 0 <= lo <= hi:
            raise ValueError("uniform latency needs 0 <= min_ms <= max_ms")
        return lambda rng: rng.uniform(lo, hi)
    if dist == "normal":
        mean = float(spec["mean_ms"])
        if "stddev_ms" in spec:
            sd = float(spec["stddev_ms"])
        elif "p99_ms" in spec:
            sd = (float(spec["p99_ms"]) - mean) / Z99
        else:
            raise ValueError("normal latency needs stddev_ms or p99_ms")
        if mean < 0 or sd < 0:
            raise ValueError("normal latency needs mean_ms >= 0 and p99_ms >= mean_ms")
        return lambda rng: max(0.0, rng.gauss(mean, sd))
    if dist == "lognormal":
        mean = float(spec["mean_ms"])
        if mean <= 0:
            raise ValueError("lognormal latency needs mean_ms > 0")
        if "sigma" in spec:
            sigma = float(spec["sigma"])
        else:
            ratio = float(spec["p99_ms"]) / mean
            disc = Z99 * Z99 - 2 * math.log(ratio) if ratio > 0 else -1
            if ratio < 1 or disc < 0:
                raise ValueError("lognormal latency needs mean_ms <= p99_ms < 14.9 * mean_ms")
            sigma = Z99 - math.sqrt(disc)
        mu = math.log(mean) - sigma * sigma / 2
        return lambda rng: rng.lognormvariate(mu, sigma)
    if dist == "exponential":
        mean = float(spec["mean_ms"])
        if mean <= 0:
            raise ValueError("exponential latency needs mean_ms > 0")
        return lambda rng: rng.expovariate(1.0 / mean)
    raise ValueError(f"unknown latency distribution {dist!r} "
                     "(fixed, uniform, normal, lognormal, exponential)")


@dataclass
class Fault:
    """Fault injection for one version of a Service: with probability ``error_rate`` a
    request is answered ``status`` (HTTP, default 500) / ``grpc_status`` (default 14
    UNAVAILABLE) / a reset TCP connection / a dropped UDP datagram; every request is
    delayed by a draw from ``latency_ms``. Draws come from ``random.Random(seed)``."""

    error_rate: float = 0.0
    latency_ms: Any = None
    seed: int | None = None
    status: int = 500
    grpc_status: int = GRPC_UNAVAILABLE
    _rng: random.Random = field(default=None, repr=False)  # type: ignore[assignment]
    _sampler: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.error_rate = float(self.error_rate)
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        self._sampler = latency_sampler(self.latency_ms)
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or self._sampler is not None

    def decide(self) -> tuple[bool, float]:
        """(answer with an error?, delay in seconds) for one request."""
        rng = self._rng
        err = self.error_rate > 0 and rng.random() < self.error_rate
        delay = self._sampler(rng) / 1000.0 if self._sampler is not None else 0.0
        return err, delay

    def to_json(self) -> dict[str, Any]:
        return {"error_rate": self.error_rate, "latency_ms": self.latency_ms, "seed": self.seed,
                "status": self.status, "grpc_status": self.grpc_status}
