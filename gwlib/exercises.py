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
