"""Exercise checks for the notebooks: ``gwlib.exercises.check("02.redirect-status", answer)``.

Each exercise has a checker that computes the right answer with gwlib itself wherever it
can (so the check and the lesson can never drift apart), and a hint. An unanswered exercise
(``...``) prints a friendly reminder, so notebooks run top to bottom untouched.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Feedback:
    exercise: str
    status: str          # "correct" | "wrong" | "unanswered"
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        mark = {"correct": "✅", "wrong": "❌", "unanswered": "✍️"}[self.status]
        return f"{mark} {self.exercise}: {self.message}"

    __repr__ = __str__


@dataclass(frozen=True)
class _Exercise:
    question: str
    solve: Callable[[], Any]          # computes the expected answer
    hint: str
    same: Callable[[Any, Any], bool]  # (given, expected) -> bool


_REGISTRY: dict[str, _Exercise] = {}


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, (list, tuple, set)):
        return sorted(_norm(v) for v in value)
    return value


def exercise(key: str, question: str, hint: str,
             same: Callable[[Any, Any], bool] | None = None) -> Callable:
    """Register a checker: the decorated function returns the expected answer."""
    def wrap(fn: Callable[[], Any]) -> Callable[[], Any]:
        _REGISTRY[key] = _Exercise(question, fn, hint, same or (lambda a, b: _norm(a) == _norm(b)))
        return fn
    return wrap


def question(key: str) -> str:
    return _REGISTRY[key].question


def check(key: str, answer: Any) -> Feedback:
    """Tell the learner whether ``answer`` to exercise ``key`` is right (with a hint if not)."""
    if key not in _REGISTRY:
        raise KeyError(f"no exercise {key!r}; known: {', '.join(sorted(_REGISTRY))}")
    ex = _REGISTRY[key]
    if answer is ... or answer is None:
        return Feedback(key, "unanswered", f"not answered yet. {ex.question}")
    if ex.same(answer, ex.solve()):
        return Feedback(key, "correct", "correct!")
    return Feedback(key, "wrong", f"not quite. Hint: {ex.hint}")


# --- 00-welcome -------------------------------------------------------------------------

@exercise("00.default-mode", "Which mode does gwlib.connect() use when GWLIB_MODE is not set?",
          "read the table of modes: the default runs real proxies on your laptop.")
def _default_mode() -> str:
    return "lab"


@exercise("00.no-cluster-modes", "Which two modes need no Kubernetes cluster? (a list of two names)",
          "one runs real proxies locally, the other is pure Python.")
def _no_cluster() -> list[str]:
    return ["lab", "reference"]


# --- 02-gateway-resources ---------------------------------------------------------------

def _talk() -> str:
    from pathlib import Path
    return str(Path(__file__).resolve().parent.parent / "data" / "manifests" / "talk")


@exercise("02.gateway-owner", "Which persona owns the Gateway? (infrastructure provider, "
          "cluster operator or application developer)",
          "the Gateway decides ports, hostnames, certificates and who may attach routes.",
          same=lambda given, expected: "operator" in str(given).lower() and "infra" not in str(given).lower())
def _gateway_owner() -> str:
    return "cluster operator"


@exercise("02.redirect-status", "Which HTTP status does GET http://argocd.example.com/ get from "
          "the talk's Gateway? (a number)",
          "look at the statusCode of the RequestRedirect filter on the http listener's route.")
def _redirect_status() -> int:
    from .connection import ReferenceConnection
    conn = ReferenceConnection()
    conn.apply(_talk())
    return conn.request(gateway="argocd/argocd-server-gateway", host="argocd.example.com", path="/")["status"]


@exercise("02.missing-port-path", "A backendRef without a port: at which field path does the "
          "error appear for the route argocd/argocd-server? (e.g. spec.rules[0].matches[0])",
          "the rule 'Must have port for Service reference' sits on each backendRef.")
def _missing_port_path() -> str:
    from pathlib import Path

    from .validation import validate
    text = (Path(_talk()) / "31-httproute.yaml").read_text().replace("      port: 80\n", "")
    return validate(text)[0].path


# --- 03-routing-deep-dive ---------------------------------------------------------------

def _routing(name: str = "") -> str:
    from pathlib import Path
    return str(Path(__file__).resolve().parent.parent / "data" / "manifests" / "routing" / name)


def _routing_conn(*files: str):
    """A fresh reference connection with notebook 03's stage and the given route files."""
    from .connection import ReferenceConnection
    conn = ReferenceConnection()
    conn.apply(_routing("00-gateway.yaml"), _routing("05-services.yaml"), *(_routing(f) for f in files))
    return conn


def _edge(path: str, host: str = "shop.example.com", **fields: Any) -> dict:
    return {"gateway": "shop/edge", "host": host, "path": path, **fields}


def _backend_of(answer: dict) -> str | None:
    b = answer.get("backend")
    return f"{b['namespace']}/{b['name']}" if b else None


def _same_backend(given: Any, expected: Any) -> bool:
    """"shoes", "shop/shoes" and "shop/shoes:80" all name the Service shop/shoes."""
    text = str(given).strip().lower().rsplit(":", 1)[0]
    ns, _, name = str(expected).lower().rpartition("/")
    return text in (name, f"{ns}/{name}")


def _same_status(given: Any, expected: Any) -> bool:
    try:
        return int(str(given).strip()) == int(expected)
    except ValueError:
        return False


def _same_share(given: Any, expected: Any) -> bool:
    """A share as a fraction (0.25), a percentage (25 or "25%") or "1/4"."""
    text = str(given).strip().replace(" ", "")
    try:
        if text.endswith("%"):
            value = float(text[:-1]) / 100
        elif "/" in text:
            num, den = text.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(text)
            value = value / 100 if value > 1 else value
    except (ValueError, ZeroDivisionError):
        return False
    return abs(value - float(expected)) < 0.005


@exercise("03.exact-beats-method", "On the Gateway shop/edge with the route catalog: "
          "POST http://shop.example.com/products/shoes — which Service answers?",
          "compare the path matches first: Exact beats every PathPrefix, whatever the method.",
          same=_same_backend)
def _exact_beats_method() -> str | None:
    conn = _routing_conn("10-catalog.yaml")
    return _backend_of(conn.request(_edge("/products/shoes", method="POST")))


@exercise("03.and-within-a-match", "On shop/edge with the route catalog: GET "
          "http://shop.example.com/products?sort=price with the header X-Beta: yes (and no "
          "X-Env) — which Service answers?",
          "the conditions of one match are ANDed: a rule with two header matches needs both headers.",
          same=_same_backend)
def _and_within_a_match() -> str | None:
    conn = _routing_conn("10-catalog.yaml")
    return _backend_of(conn.request(_edge("/products?sort=price", headers={"X-Beta": "yes"})))


@exercise("03.wildcard-listener", "On the Gateway shop/sites (20-hostnames.yaml): GET "
          "http://www.shop.example.com/cart — which Service answers?",
          "pick the listener first: does www.shop.example.com match shop.example.com, or "
          "*.example.com (a wildcard covers any number of labels)? Then only that listener's routes count.",
          same=_same_backend)
def _wildcard_listener() -> str | None:
    conn = _routing_conn("20-hostnames.yaml")
    return _backend_of(conn.request(_edge("/cart", host="www.shop.example.com", gateway="shop/sites")))


@exercise("03.redirect-location", "On shop/edge with the route redirects: GET "
          "/docs/intro?page=2 with Host old.example.com:8080, sent to port 8080 — which "
          "Location does the redirect carry?",
          "the rule replaces the prefix /docs with /manual and sets no scheme, so the port "
          "is the listener's; the query string is kept.")
def _redirect_location() -> str | None:
    conn = _routing_conn("41-redirects.yaml")
    return conn.request(_edge("/docs/intro?page=2", host="old.example.com:8080", port=8080))["location"]


@exercise("03.error-share", "On shop/edge with the route backends, after "
          "conn.set_weights(\"shop/backends\", {\"web-v2\": 0}, rule=3): which share of "
          "GET http://backends.example.com/split answers 500? (a fraction, e.g. 0.5)",
          "weights left: web 2, ghost 1; ghost does not exist, and its share of the weight answers 500.",
          same=_same_share)
def _error_share() -> float:
    conn = _routing_conn("50-backends.yaml")
    conn.set_weights("shop/backends", {"web-v2": 0}, rule=3)
    return conn.split(_edge("/split", host="backends.example.com")).get("500", 0.0)


@exercise("03.grant-in-wrong-namespace", "The ReferenceGrant of 61-referencegrant.yaml, but "
          "created in the namespace shop (the route's) instead of payments: which status does "
          "GET http://shop.example.com/checkout get? (a number)",
          "a grant is written by the owner of the target, in the target's namespace; anywhere "
          "else it allows nothing.",
          same=_same_status)
def _grant_in_wrong_namespace() -> int:
    from pathlib import Path
    conn = _routing_conn("60-cross-namespace.yaml")
    text = Path(_routing("61-referencegrant.yaml")).read_text()
    conn.apply(text.replace("namespace: payments", "namespace: shop"))
    return conn.request(_edge("/checkout"))["status"]


# --- 04-beyond-http ---------------------------------------------------------------------

def _beyond() -> str:
    from pathlib import Path
    return str(Path(__file__).resolve().parent.parent / "data" / "manifests" / "beyond-http")


@exercise("04.grpc-unmatched-status", "A gRPC call to grpc.example.com for the service other.Service: "
          "which gRPC status code does the Gateway answer? (a number)",
          "the GRPCRoute only matches gwlib.echo.EchoService; an unmatched call is UNIMPLEMENTED.")
def _grpc_unmatched() -> int:
    from .connection import ReferenceConnection
    conn = ReferenceConnection()
    conn.apply(_beyond())
    return conn.request(gateway="apps/multi", host="grpc.example.com",
                        grpc={"service": "other.Service", "method": "Get"})["grpc_status"]


@exercise("04.tcp-replica-share", "Which share of TCP connections on port 5432 goes to db-replica? "
          "(a number between 0 and 1)", "weights are relative: 10 / (90 + 10).",
          same=lambda given, expected: isinstance(given, (int, float)) and abs(given - expected) < 1e-9)
def _tcp_share() -> float:
    from .connection import ReferenceConnection
    conn = ReferenceConnection()
    conn.apply(_beyond())
    return conn.split(gateway="apps/multi", port=5432, scheme="tcp").get("apps/db-replica", 0.0)


@exercise("04.passthrough-decrypts", "With a TLS listener in Passthrough mode, does the Gateway decrypt "
          "the traffic? (True or False)", "Passthrough means the Gateway only reads the SNI.",
          same=lambda given, expected: given is expected)
def _passthrough() -> bool:
    return False


# --- 08-linkerd-latency-benchmarks ---

def _close(rel: float = 0.01) -> Callable[[Any, Any], bool]:
    def same(given: Any, expected: Any) -> bool:
        try:
            return abs(float(given) - float(expected)) <= rel * abs(float(expected))
        except (TypeError, ValueError):
            return False
    return same


@exercise("08.redux-linkerd-p50", "In Buoyant's 2021 Redux study, what was Linkerd's p50 latency at "
          "2,000 requests/s, in ms? (a number)",
          "filter gwlib.latency.published('buoyant-2021-11') by mesh, rps and percentile == 50.",
          same=_close())
def _redux_linkerd_p50() -> float:
    from .latency import published
    df = published("buoyant-2021-11")
    return float(df.query("mesh == 'linkerd' and rps == 2000 and percentile == 50")["latency_ms"].item())


@exercise("08.closed-loop-study", "Which published study sent load in a closed loop with no rate limit, so "
          "that its latencies mostly measure saturation? (the study's name, e.g. 'kinvolk-2019')",
          "look at the loop column of gwlib.latency.studies().")
def _closed_loop_study() -> str:
    from .latency import studies
    s = studies()
    return str(s.index[s["loop"] == "closed"][0])


@exercise("08.merged-p99", "Pool the five runs of gwlib.latency.demo_runs(seed=0): what is the p99 of all "
          "their requests together, in ms? (within 1 %)",
          "merge the histograms (gwlib.latency.merge) and read percentile(99): not the mean of the runs' p99s.",
          same=_close())
def _merged_p99() -> float:
    from .latency import demo_runs, merge
    return merge(demo_runs(seed=0)).percentile(99)
