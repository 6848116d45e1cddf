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


def _reference(*sources: Any):
    """A reference-mode connection holding ``sources`` (checkers compute answers with it)."""
    from .connection import ReferenceConnection
    conn = ReferenceConnection()
    conn.apply(*sources)
    return conn


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
    conn = _reference(_talk())
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
    conn = _reference(_routing("00-gateway.yaml"), _routing("05-services.yaml"), *(_routing(f) for f in files))
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
          "the GRPCRoute only matches the echo's GrpcEcho service; an unmatched call is UNIMPLEMENTED.")
def _grpc_unmatched() -> int:
    conn = _reference(_beyond())
    return conn.request(gateway="apps/multi", host="grpc.example.com",
                        grpc={"service": "other.Service", "method": "Get"})["grpc_status"]


@exercise("04.tcp-replica-share", "Which share of TCP connections on port 5432 goes to db-replica? "
          "(a number between 0 and 1)", "weights are relative: 10 / (90 + 10).",
          same=lambda given, expected: isinstance(given, (int, float)) and abs(given - expected) < 1e-9)
def _tcp_share() -> float:
    conn = _reference(_beyond())
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


# --- 01-ingress-limits ---

def _ingress_example(name: str) -> str:
    from pathlib import Path
    return str(Path(__file__).resolve().parent.parent / "data" / "ingress" / name / "ingress.yaml")


def _annotation_keys(values) -> list[str]:
    items = [values] if isinstance(values, str) else list(values or [])
    return sorted(str(v).strip().lower().removeprefix("nginx.ingress.kubernetes.io/") for v in items)


def _number_close(given, expected) -> bool:
    try:
        return abs(float(given) - float(expected)) <= 0.01 * max(1.0, abs(float(expected)))
    except (TypeError, ValueError):
        return False


@exercise("01.lost-errors", "Convert data/ingress/02-argocd-vendor: which annotations does the report list with "
          "severity 'error'? (a list of annotation keys; the nginx.ingress.kubernetes.io/ prefix is optional)",
          "conv.report.to_frame() has a severity column: keep the rows with 'error' and read the annotations.",
          same=lambda given, expected: _annotation_keys(given) == _annotation_keys(expected))
def _lost_errors() -> list[str]:
    from .ingress import convert
    conv = convert(_ingress_example("02-argocd-vendor"), provider="ingress-nginx")
    return sorted({f.annotation for f in conv.report.findings if f.severity == "error" and f.annotation})


@exercise("01.canary-percent", "After the conversion of 02-argocd-vendor, what percentage of HTTPS requests to "
          "argocd.example.com WITHOUT an X-Canary header reach argocd-server-canary? (a number)",
          "look at the weights of the rule without a header match (canary-weight of canary-weight-total), or ask "
          "ref.split(...).", same=_number_close)
def _canary_percent() -> float:
    from .ingress import convert
    from .router import Router
    conv = convert(_ingress_example("02-argocd-vendor"), provider="ingress-nginx")
    split = Router(conv.with_stand_ins()).split({"gateway": "argocd/nginx", "scheme": "https", "port": 443,
                                                 "host": "argocd.example.com", "path": "/"})
    return round(100 * split.get("argocd/argocd-server-canary", 0.0), 6)


@exercise("01.wildcard-depth", "In data/ingress/11-wildcards-and-hostless, is a request for a.b.preview.example.com "
          "routed to preview-router (1) by the Ingress rule for *.preview.example.com and (2) by the converted "
          "HTTPRoute? (two booleans: [ingress, gateway])",
          "an Ingress wildcard stands for exactly one DNS label; a Gateway API wildcard for one or more.",
          same=lambda given, expected: isinstance(given, (list, tuple)) and len(given) == 2
          and [bool(g) for g in given] == list(expected))
def _wildcard_depth() -> list[bool]:
    from .ingress import IngressRouter, convert
    from .router import Router
    path = _ingress_example("11-wildcards-and-hostless")
    req = {"gateway": "preview/nginx", "host": "a.b.preview.example.com", "path": "/"}
    ing = IngressRouter(path, provider="ingress-nginx").route(req).get("backend") or {}
    gw = Router(convert(path, provider="ingress-nginx").with_stand_ins()).route(req).get("backend") or {}
    return [ing.get("name") == "preview-router", gw.get("name") == "preview-router"]


def _header_route_works(given, expected) -> bool:
    """Apply the learner's HTTPRoute next to the converted 01-argocd objects and check where
    requests with and without ``X-Env: canary`` go."""
    from .ingress import convert
    from .router import Router
    from .validation import load
    try:
        theirs = load(given)
    except (TypeError, ValueError):
        return False
    canary = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "argocd-server-canary",
                                                                  "namespace": "argocd"},
              "spec": {"ports": [{"name": "http", "port": 80}]}}
    router = Router(convert(_ingress_example("01-argocd"), provider="ingress-nginx").with_stand_ins()
                    + load(canary) + theirs)
    base = {"gateway": "argocd/nginx", "scheme": "https", "port": 443, "host": "argocd.example.com",
            "path": "/applications"}
    got = []
    for headers in ({"X-Env": "canary"}, {}, {"X-Env": "prod"}):
        b = router.route({**base, "headers": headers}).get("backend") or {}
        got.append(f"{b.get('name')}:{b.get('port')}")
    return got == list(expected)


@exercise("01.header-route", "Write an HTTPRoute (YAML text) in namespace argocd that sends HTTPS requests for "
          "argocd.example.com with the header X-Env: canary to the Service argocd-server-canary (port 80), "
          "attached to the converted Gateway nginx (listener https-argocd-example-com). Other requests must "
          "still reach argocd-server.",
          "parentRefs: [{name: nginx, sectionName: https-argocd-example-com}], hostnames: [argocd.example.com], "
          "one rule with matches: [{headers: [{name: X-Env, value: canary}]}] and a backendRef with its port.",
          same=_header_route_works)
def _header_route() -> list[str]:
    return ["argocd-server-canary:80", "argocd-server:80", "argocd-server:80"]


# --- 05-linkerd-mesh ---

def _mesh_conn(*extra: str):
    from pathlib import Path

    manifests = Path(__file__).resolve().parent.parent / "data" / "manifests"
    conn = _reference(manifests / "talk-mesh")
    for name in extra:
        conn.apply(manifests / "mesh" / name)
    return conn


@exercise("05.unmeshed-share", "With the 90/10 canary route on demo/web, which share of the calls of the "
          "unmeshed batch/report job reaches web-v2? (a number between 0 and 1)",
          "routes with a Service parent are applied by the caller's sidecar; report has none.",
          same=lambda given, expected: isinstance(given, (int, float)) and abs(given - expected) < 1e-9)
def _unmeshed_share() -> float:
    conn = _mesh_conn("10-web-v2.yaml", "20-canary-route.yaml", "30-namespaces.yaml")
    return conn.split({"service": "demo/web", "port": 80, "from": "batch", "workload": "report",
                       "path": "/"}).get("demo/web-v2", 0.0)


@exercise("05.qa-backend", "With 40-consumer-route.yaml applied, which Service answers the meshed qa/tester "
          "when it calls demo/web? ('namespace/name')",
          "a consumer route in the client's own namespace replaces the producer route for that client.")
def _qa_backend() -> str:
    conn = _mesh_conn("10-web-v2.yaml", "20-canary-route.yaml", "30-namespaces.yaml", "40-consumer-route.yaml")
    b = conn.request({"service": "demo/web", "port": 80, "from": "qa", "workload": "tester", "path": "/"})["backend"]
    return f"{b['namespace']}/{b['name']}"


@exercise("05.route-role", "An HTTPRoute in namespace qa whose parentRef is the Service demo/web: is it a "
          "producer route or a consumer route?",
          "a producer route lives in the Service's own namespace.")
def _route_role() -> str:
    return "consumer"


# --- 09-operating-gateway-api ---

@exercise("09.grpcroute-v1-linkerd", "From which Linkerd release on does the control plane read GRPCRoute v1? "
          "(e.g. '2.16')", "look at the GRPCRoute column of gwlib.compat.matrix().")
def _grpcroute_v1_linkerd() -> str:
    from .compat import data
    return next(r["version"] for r in data("linkerd")["releases"]
                if "v1" in (r.get("reads") or {}).get("GRPCRoute", []))


@exercise("09.channel-for-both", "Staying on Linkerd 2.17 next to Traefik and the Argo Rollouts plugin: which "
          "channel of Gateway API v1.1.1 serves GRPCRoute both as v1alpha2 and as v1? "
          "('standard' or 'experimental')", "gwlib.compat.history('GRPCRoute') shows both channels.")
def _channel_for_both() -> str:
    from .compat import gateway_api_release
    rel = gateway_api_release("v1.1.1")
    return next(c for c in ("standard", "experimental")
                if {"v1", "v1alpha2"} <= set(rel["served"][c].get("GRPCRoute", [])))


@exercise("09.compat-exit-code", "Which exit code does `gwlib compat check --gateway-api v1.2.1 --linkerd 2.17` "
          "return? (a number)", "1 means at least one finding is an error.",
          same=lambda given, expected: given == expected and not isinstance(given, bool))
def _compat_exit_code() -> int:
    from .compat import check, has_errors
    return 1 if has_errors(check(gateway_api="v1.2.1", linkerd="2.17")) else 0


# --- 06-canary-weights ---

def _rollouts(name: str = "") -> str:
    from pathlib import Path
    return str(Path(__file__).resolve().parent.parent / "data" / "rollouts" / name)


def _shop(path: str) -> dict:
    return {"gateway": "shop/edge", "host": "shop.example.com", "path": path}


@exercise("06.default-weight-share", "A rule lists the stable and the canary Service without weights "
          "(GET /default on shop/edge). Which share of requests reaches the canary? (a fraction)",
          "a backendRef without a weight has weight 1; shares are weight / sum of the rule's weights.",
          same=_same_share)
def _default_weight_share() -> float:
    conn = _reference(_rollouts("weights"))
    return conn.split(_shop("/default")).get("shop/canary", 0.0)


@exercise("06.ghost-error-share", "GET /ghost: stable has weight 3, ghost (a Service that does not exist) "
          "weight 1. Which share of requests answers 500? (a fraction)",
          "an invalid backend keeps its share of the weights, and that share answers 500.",
          same=_same_share)
def _ghost_error_share() -> float:
    conn = _reference(_rollouts("weights"))
    return conn.split(_shop("/ghost")).get("500", 0.0)


@exercise("06.traefik-canary-count", "Traefik, weights stable 80 / canary 20: how many of 10 consecutive "
          "requests reach the canary? (a number)",
          "Traefik's weighted round robin follows a fixed schedule: look at gwlib.canary.wrr_schedule([80, 20]).",
          same=_same_status)
def _traefik_canary_count() -> int:
    from .canary import picks
    return int((picks([80, 20], 10, "wrr") == 1).sum())


# --- 07-progressive-delivery ---

def _same_numbers(given: Any, expected: list[int]) -> bool:
    try:
        return [int(x) for x in given] == list(expected)
    except (TypeError, ValueError):
        return False


@exercise("07.abort-step", "The talk's Rollout (data/rollouts/talk) with 5 % errors on v2: at which step "
          "index is it aborted? (a number)",
          "the first step whose analysis measures the canary's success rate: count from 0.",
          same=_same_status)
def _abort_step() -> int | None:
    from .rollout import RolloutRun
    conn = _reference(_rollouts("talk"))
    run = RolloutRun(conn, seed=0, requests_per_step=1000)
    run.set_fault("v2", error_rate=0.05)
    return run.run().aborted_at_step


@exercise("07.flagger-weights", "Flagger with stepWeight 20 and maxWeight 50: which canary weights does a "
          "healthy canary go through before promotion? (a list of numbers)",
          "Flagger adds stepWeight each interval and promotes once the weight reaches maxWeight — the last "
          "step can overshoot.",
          same=lambda given, expected: _same_numbers(given, expected))
def _flagger_weights() -> list[int]:
    from .rollout.flagger import schedule
    return schedule(20, 50)


@exercise("07.requests-for-2x", "How many requests in total (canary and stable) does a two-proportion "
          "z-test need to catch an error rate going from 1 % to 2 % on a canary at weight 5 %? "
          "(a number, within 2 %)",
          "gwlib.rollout.stats.requests_needed(0.01, 0.02, 0.05) — read 'total'.",
          same=_close(0.02))
def _requests_for_2x() -> int:
    from .rollout.stats import requests_needed
    return requests_needed(0.01, 0.02, 0.05)["total"]
