"""Run wrk2 or fortio on a real cluster, meshed and unmeshed, and read the results back.

The recipe (``scripts/latency/``) builds on these functions:

1. :func:`echo_manifests` — two namespaces, ``bench-baseline`` (never injected) and
   ``bench-mesh`` (``linkerd.io/inject: enabled``), each with the same echo Deployment and
   Service (fortio's echo server, ``fortio server``);
2. :func:`plan` — one Job per (namespace, rate, run), baseline and mesh interleaved so that
   drift over time does not masquerade as mesh overhead. Each Job runs in the namespace of
   the echo it loads, so the mesh Job's client is meshed too (client sidecar + server
   sidecar, like the published studies) and uses a native sidecar so that it completes;
3. :func:`collect` — read the Jobs' logs (through the ``kubernetes`` client, or saved log
   files with :func:`from_logs`), parse them with :func:`gwlib.latency.load` and return the
   tidy schema plus ``mesh`` and ``run`` columns.

Nothing here needs a cluster until :func:`collect` is called with one; the manifests are
plain dicts (``to_yaml`` prints them for ``kubectl apply -f -``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .parsers import load
from .result import ParseError, Result, frame

FORTIO_IMAGE = "fortio/fortio:1.75.2"
#: wrk2 has no official image: build scripts/latency/wrk2.Dockerfile and load it into the cluster
WRK2_IMAGE = "gwlib/wrk2:local"
PART_OF = "gwlib-latency"
NAMESPACES = {"baseline": "bench-baseline", "linkerd": "bench-mesh"}
ECHO_PORT = 8080


def _labels(**extra: str) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": PART_OF, **extra}


def echo_manifests(image: str = FORTIO_IMAGE, replicas: int = 1) -> list[dict[str, Any]]:
    """Namespaces, echo Deployments and Services for the baseline and the mesh."""
    objs: list[dict[str, Any]] = []
    for mesh, ns in NAMESPACES.items():
        inject = "enabled" if mesh != "baseline" else "disabled"
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": _labels(), "annotations": {"linkerd.io/inject": inject}}})
        sel = {"app.kubernetes.io/name": "echo"}
        objs.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "echo", "namespace": ns, "labels": _labels(**sel)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": _labels(**sel)},
                                  "spec": {"containers": [{
                                      "name": "echo", "image": image,
                                      "args": ["server", "-http-port", str(ECHO_PORT)],
                                      "ports": [{"name": "http", "containerPort": ECHO_PORT}],
                                      "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}},
                                      "readinessProbe": {"httpGet": {"path": "/", "port": ECHO_PORT}}}]}}}})
        objs.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "echo", "namespace": ns, "labels": _labels()},
            "spec": {"selector": sel, "ports": [{"name": "http", "port": ECHO_PORT, "targetPort": "http",
                                                 "appProtocol": "http"}]}})
    return objs


def _duration_arg(seconds: int) -> str:
    return f"{int(seconds)}s"


def job_manifest(tool: str, mesh: str, rate: int, run: int, *, duration_s: int = 60, connections: int = 32,
                 image: str | None = None, threads: int = 2) -> dict[str, Any]:
    """One load Job: ``tool`` (``fortio`` or ``wrk2``) at ``rate`` req/s against the echo of ``mesh``."""
    if mesh not in NAMESPACES:
        raise ValueError(f"mesh must be one of {sorted(NAMESPACES)}")
    if not 0 < rate <= 1_000_000 or not 0 < duration_s <= 24 * 3600 or connections < 1:
        raise ValueError("rate, duration and connections must be positive (and sane)")
    ns = NAMESPACES[mesh]
    url = f"http://echo.{ns}.svc.cluster.local:{ECHO_PORT}/"
    if tool == "fortio":
        image = image or FORTIO_IMAGE
        args = ["load", "-qps", str(rate), "-c", str(connections), "-t", _duration_arg(duration_s),
                "-r", "0.0001", "-p", "50,75,90,99,99.9,99.99", "-uniform", "-nocatchup",
                "-json", "-", "-quiet", url]
        command = None
    elif tool == "wrk2":
        image = image or WRK2_IMAGE
        if connections < threads:
            raise ValueError("wrk2 needs connections >= threads")
        args = [f"-t{threads}", f"-c{connections}", f"-d{_duration_arg(duration_s)}", f"-R{rate}", "--latency",
                "-U", url]
        command = ["wrk"]
    else:
        raise ValueError("tool must be 'fortio' or 'wrk2'")
    name = f"{tool}-{'mesh' if mesh != 'baseline' else 'base'}-{rate}rps-run{run}"
    labels = _labels(**{"app.kubernetes.io/name": "loadgen", "gwlib.dev/tool": tool, "gwlib.dev/mesh": mesh,
                        "gwlib.dev/rate": str(rate), "gwlib.dev/run": str(run)})
    annotations = {"linkerd.io/inject": "enabled" if mesh != "baseline" else "disabled"}
    if mesh != "baseline":
        # a meshed Job only completes if its proxy is a native sidecar (Kubernetes >= 1.29)
        annotations["config.beta.linkerd.io/proxy-enable-native-sidecar"] = "true"
        annotations["config.alpha.linkerd.io/proxy-enable-native-sidecar"] = "true"
    container: dict[str, Any] = {"name": tool, "image": image, "args": args,
                                 "resources": {"requests": {"cpu": "1", "memory": "128Mi"}}}
    if command:
        container["command"] = command
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400,
                 "activeDeadlineSeconds": duration_s + 300,
                 "template": {"metadata": {"labels": dict(labels), "annotations": annotations},
                              "spec": {"restartPolicy": "Never", "containers": [container]}}}}


def plan(tool: str = "fortio", rates: Iterable[int] = (20, 200, 2000), runs: int = 3, **kw: Any
         ) -> list[dict[str, Any]]:
    """Every Job of a study, baseline and mesh interleaved (run them one at a time, in order)."""
    jobs = []
    for run in range(1, runs + 1):
        for rate in rates:
            for mesh in ("baseline", "linkerd"):
                jobs.append(job_manifest(tool, mesh, int(rate), run, **kw))
    return jobs


def to_yaml(objs: Iterable[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objs), sort_keys=False)


# -- reading results back ----------------------------------------------------------------------

_LOG_NAME = re.compile(r"^(?P<tool>fortio|wrk2)-(?P<mesh>mesh|base)-(?P<rate>\d+)rps-run(?P<run>\d+)")


def _tag(result: Result, mesh: str, rate: int | None, run: str | None) -> Result:
    return result.replace(rate=result.rate or (float(rate) if rate else None), run=run,
                          meta={**result.meta, "mesh": mesh})


def _table(results: list[Result]) -> pd.DataFrame:
    df = frame(results)
    df.insert(1, "mesh", [r.meta.get("mesh") for r in results for _ in r.percentiles])
    return df


def from_logs(directory: str | Path) -> tuple[pd.DataFrame, list[Result]]:
    """Parse saved Job logs named like the Jobs (``fortio-mesh-200rps-run1.log``)."""
    results = []
    for path in sorted(Path(directory).glob("*.log")):
        m = _LOG_NAME.match(path.name)
        if not m:
            continue
        mesh = "linkerd" if m["mesh"] == "mesh" else "baseline"
        r = load(path, tool=m["tool"])
        results.append(_tag(r, mesh, int(m["rate"]), m["run"]))
    if not results:
        raise FileNotFoundError(f"no Job logs (fortio-mesh-200rps-run1.log ...) in {directory}")
    return _table(results), results


def collect(api: Any = None, namespaces: Iterable[str] = tuple(NAMESPACES.values()),
            save_dir: str | Path | None = None) -> tuple[pd.DataFrame, list[Result]]:
    """Read the logs of every finished load Job's pod and parse them.

    ``api`` is a ``kubernetes.client.CoreV1Api`` (created from your kubeconfig when None).
    With ``save_dir`` the raw logs are also written there (re-read them with
    :func:`from_logs`). Pods whose log cannot be parsed are reported, not skipped silently.
    """
    if api is None:
        from kubernetes import client, config
        config.load_kube_config()
        api = client.CoreV1Api()
    results: list[Result] = []
    problems: list[str] = []
    for ns in namespaces:
        pods = api.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/part-of={PART_OF},"
                                                          "app.kubernetes.io/name=loadgen")
        for pod in pods.items:
            if getattr(pod.status, "phase", None) != "Succeeded":
                continue
            labels = pod.metadata.labels or {}
            tool = labels.get("gwlib.dev/tool")
            container = tool
            text = api.read_namespaced_pod_log(pod.metadata.name, ns, container=container)
            job = labels.get("job-name") or pod.metadata.name
            if save_dir is not None:
                Path(save_dir).mkdir(parents=True, exist_ok=True)
                (Path(save_dir) / f"{job}.log").write_text(text)
            try:
                r = load(text, tool=tool)
            except ParseError as exc:
                problems.append(f"{ns}/{pod.metadata.name}: {exc}")
                continue
            r = r.replace(source=f"{ns}/{pod.metadata.name}", target=r.target or f"echo.{ns}")
            results.append(_tag(r, labels.get("gwlib.dev/mesh", "?"), int(labels.get("gwlib.dev/rate", 0)) or None,
                                labels.get("gwlib.dev/run")))
    if problems:
        raise ParseError("collect", "some Job logs could not be read:\n  " + "\n  ".join(problems))
    if not results:
        raise LookupError("no finished load Jobs found (label app.kubernetes.io/part-of=gwlib-latency)")
    return _table(results), results
