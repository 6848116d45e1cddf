"""Errors of cluster mode: one clear line each, never a traceback.

Every error here renders as its one line in Jupyter too (IPython calls
``_render_traceback_`` when an exception defines it), and the ``gwlib cluster`` command
prints it on stderr.
"""
from __future__ import annotations

import json
import warnings


class ClusterError(RuntimeError):
    """An API server error, or a cluster gwlib cannot reach or use.

    ``status`` is the HTTP status (404, 409, 422, ...; None when the server was not reached),
    ``reason`` the API's reason (``NotFound``, ``AlreadyExists``, ``Invalid``, ...), and
    ``str(error)`` the one line to show: what gwlib was doing, then the API's own message."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None,
                 api_message: str | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.status = status
        self.reason = reason
        self.api_message = api_message

    def _render_traceback_(self) -> list[str]:  # IPython: show the line, not a traceback
        return [f"{type(self).__name__}: {self}"]


class ContextRefused(ClusterError):
    """The kube context is not one gwlib may touch (see :mod:`gwlib.cluster.safety`)."""


class NotServed(ClusterError):
    """The cluster does not serve a kind (its CRD is not installed, or not that version)."""


class ClusterTimeout(ClusterError):
    """Waiting for the cluster took longer than the timeout; ``pending`` says what was missing."""

    def __init__(self, message: str, pending: list[str] | None = None) -> None:
        super().__init__(message)
        self.pending = list(pending or [])


class UnsafeObject(ClusterError):
    """An object gwlib will not write: outside gwlib's namespaces, or not created by gwlib."""


class ClusterWarning(UserWarning):
    """Something the cluster did differently from what was asked, said once."""


def warn(message: str) -> None:
    warnings.warn(message, ClusterWarning, stacklevel=3)


def api_message(body: str | bytes | None) -> tuple[str | None, str | None]:
    """(message, reason) of a ``Status`` body the API server sent with an error."""
    if not body:
        return None, None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        text = " ".join(body.split())
        return (text[:300] or None), None
    if isinstance(data, dict) and data.get("kind") == "Status":
        return data.get("message") or None, data.get("reason") or None
    return None, None


def from_api_exception(exc, doing: str) -> ClusterError:
    """A :class:`ClusterError` from a ``kubernetes.client.ApiException``: ``doing`` (e.g.
    ``"apply HTTPRoute demo/web"``), the API's own message, the status code and reason."""
    message, reason = api_message(getattr(exc, "body", None))
    status = getattr(exc, "status", None)
    reason = reason or getattr(exc, "reason", None)
    text = message or reason or str(exc).splitlines()[0]
    code = f" ({status} {reason})" if status else ""
    return ClusterError(f"{doing}: {text}{code}", status=status, reason=reason, api_message=message)
