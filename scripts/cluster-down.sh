#!/usr/bin/env bash
# scripts/cluster-down.sh: remove the local cluster scripts/cluster-up.sh made.
#
# What it does (idempotent: a cluster that is already gone is not an error):
#   1. deletes the kind cluster "$CLUSTER_NAME" (default gwlib), with everything in it and
#      its kube context kind-$CLUSTER_NAME;
#   2. with --purge, also deletes $STATE_DIR (default ~/.cache/gwlib/<name>): the Linkerd
#      trust anchor and issuer cluster-up.sh made (kept otherwise, so a new cluster reuses them).
# To remove only what gwlib applied and keep the cluster: gwlib cluster clean.
#
# Usage: scripts/cluster-down.sh [--name NAME] [--purge] [--help]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$HERE/versions.env"

CLUSTER_NAME=${CLUSTER_NAME:-gwlib}
PURGE=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --name) CLUSTER_NAME=${2:?--name needs a value}; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster-down.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

STATE_DIR=${STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gwlib/$CLUSTER_NAME}

say() { printf '==> %s\n' "$*"; }

command -v kind >/dev/null 2>&1 || { echo "cluster-down.sh: kind is not installed" >&2; exit 1; }

say "kind cluster $CLUSTER_NAME"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  kind delete cluster --name "$CLUSTER_NAME"
else
  printf '    not there: nothing to delete\n'
fi

if [ "$PURGE" = 1 ]; then
  say "state in $STATE_DIR"
  rm -rf -- "$STATE_DIR"
fi
say "done (kind $KIND_VERSION cluster $CLUSTER_NAME removed)"
