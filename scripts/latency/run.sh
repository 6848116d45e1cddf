#!/usr/bin/env bash
# Mesh vs baseline latency on a real cluster (Linkerd installed, kubectl pointing at it).
#
#   scripts/latency/run.sh [fortio|wrk2] [RATES] [RUNS] [DURATION_S]
#   scripts/latency/run.sh fortio 20,200,2000 3 60
#
# Deploys the two echo services, runs the load Jobs ONE AT A TIME (baseline and mesh
# interleaved, so drift in the cluster does not look like mesh overhead), saves every log
# under results/latency-<timestamp>/logs and writes the tidy CSV next to them.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOL=${1:-fortio}; RATES=${2:-20,200,2000}; RUNS=${3:-3}; DURATION=${4:-60}
PY=${PYTHON:-.venv/bin/python}
OUT=results/latency-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/logs"

$PY scripts/latency/manifests.py echo | kubectl apply -f -
for ns in bench-baseline bench-mesh; do
  kubectl -n "$ns" rollout status deploy/echo --timeout=180s
done
if kubectl -n bench-mesh get pods -l app.kubernetes.io/name=echo -o jsonpath='{.items[0].spec.containers[*].name}{.items[0].spec.initContainers[*].name}' | grep -q linkerd-proxy; then
  echo "bench-mesh echo is meshed"
else
  echo "WARNING: no linkerd-proxy in bench-mesh/echo: is Linkerd installed?" >&2
fi

$PY scripts/latency/manifests.py jobs --tool "$TOOL" --rates "$RATES" --runs "$RUNS" --duration "$DURATION" > "$OUT/jobs.yaml"
# one Job at a time, in plan order
$PY - "$OUT/jobs.yaml" <<'PYEOF' | while read -r ns name; do
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    print(d["metadata"]["namespace"], d["metadata"]["name"])
PYEOF
  $PY - "$OUT/jobs.yaml" "$name" <<'PYEOF' | kubectl apply -f -
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["metadata"]["name"] == sys.argv[2]:
        print(yaml.safe_dump(d))
PYEOF
  kubectl -n "$ns" wait --for=condition=complete "job/$name" --timeout=$((DURATION + 300))s
  kubectl -n "$ns" logs "job/$name" -c "$TOOL" > "$OUT/logs/$name.log"
  echo "done: $ns/$name"
done

$PY scripts/latency/collect.py --from-logs "$OUT/logs" -o "$OUT/latency.csv"
echo "results: $OUT/latency.csv  (clean up: kubectl delete ns bench-baseline bench-mesh)"
