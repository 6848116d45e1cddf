#!/usr/bin/env bash
# scripts/cluster-up.sh: a local Kubernetes cluster for gwlib's cluster mode.
#
# What it does, in order (every step is idempotent: run it again and it converges, nothing
# is duplicated; each step says what it does):
#   1. checks the tools: docker, kind, kubectl, helm, openssl, curl;
#   2. creates the kind cluster "$CLUSTER_NAME" (default gwlib; kube context kind-gwlib) with
#      host ports 127.0.0.1:$HTTP_PORT -> Gateway port 80 and 127.0.0.1:$HTTPS_PORT -> 443
#      (defaults 8080 and 8443), unless it exists;
#   3. installs the Gateway API CRDs ($GATEWAY_API_VERSION, $GATEWAY_API_CHANNEL channel) on
#      their own, server-side applied, before any chart (the talk's lesson);
#   4. installs Traefik with its Kubernetes Gateway provider (no GatewayClass or Gateway
#      of its own), then checks that no chart replaced the Gateway API CRDs;
#   5. installs Linkerd: linkerd-crds with installGatewayAPI=false, the control plane (a
#      trust anchor and issuer made once with openssl, kept in $STATE_DIR), and linkerd-viz
#      (the Prometheus the AnalysisTemplates query);
#   6. installs Argo Rollouts with the Gateway API traffic-router plugin;
#   7. deploys the echo backend smoke test (namespace gwlib-smoke) and checks that a request
#      through Traefik reaches the echo server.
# Versions: scripts/versions.env (one file, a comment per version).
#
# Usage: scripts/cluster-up.sh [--name NAME] [--skip-linkerd] [--skip-argo] [--help]
# Environment: CLUSTER_NAME, HTTP_PORT, HTTPS_PORT, STATE_DIR (default ~/.cache/gwlib/<name>).
# Then: GWLIB_MODE=cluster GWLIB_CONTEXT=kind-$CLUSTER_NAME (see README, "Cluster mode").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$HERE/versions.env"

CLUSTER_NAME=${CLUSTER_NAME:-gwlib}
HTTP_PORT=${HTTP_PORT:-8080}
HTTPS_PORT=${HTTPS_PORT:-8443}
SKIP_LINKERD=${SKIP_LINKERD:-0}
SKIP_ARGO=${SKIP_ARGO:-0}
# Linkerd's proxy-init writes nftables rules (kind nodes and current kernels use nft)
LINKERD_IPTABLES_MODE=${LINKERD_IPTABLES_MODE:-nft}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --name) CLUSTER_NAME=${2:?--name needs a value}; shift 2 ;;
    --skip-linkerd) SKIP_LINKERD=1; shift ;;
    --skip-argo) SKIP_ARGO=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster-up.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

CONTEXT="kind-$CLUSTER_NAME"
STATE_DIR=${STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gwlib/$CLUSTER_NAME}

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'cluster-up.sh: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }
h() { helm --kube-context "$CONTEXT" "$@"; }

# -- 1. tools ---------------------------------------------------------------------------------
say "1/7 checking the tools"
for tool in docker kind kubectl helm openssl curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (see README, \"Cluster mode\")"
done
docker info >/dev/null 2>&1 || die "docker is not running (kind runs the cluster in Docker)"
have_kind=$(kind version 2>/dev/null | awk '{print $2}')
if [ "$have_kind" != "$KIND_VERSION" ]; then
  note "kind is $have_kind; the pinned version is $KIND_VERSION (scripts/versions.env): continuing"
fi

# -- 2. the kind cluster ----------------------------------------------------------------------
say "2/7 kind cluster $CLUSTER_NAME (context $CONTEXT)"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  note "exists: keeping it (scripts/cluster-down.sh removes it)"
else
  note "creating it from $KIND_NODE_IMAGE, Gateway ports 80 -> 127.0.0.1:$HTTP_PORT, 443 -> 127.0.0.1:$HTTPS_PORT"
  kind create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --wait 120s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  extraPortMappings:
  - containerPort: 30080
    hostPort: $HTTP_PORT
    listenAddress: "127.0.0.1"
    protocol: TCP
  - containerPort: 30443
    hostPort: $HTTPS_PORT
    listenAddress: "127.0.0.1"
    protocol: TCP
EOF
fi
k cluster-info >/dev/null || die "context $CONTEXT does not answer"

# -- 3. Gateway API CRDs ----------------------------------------------------------------------
say "3/7 Gateway API CRDs $GATEWAY_API_VERSION ($GATEWAY_API_CHANNEL channel), on their own"
bundle_of() {
  k get crd gateways.gateway.networking.k8s.io \
    -o jsonpath='{.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version} {.metadata.annotations.gateway\.networking\.k8s\.io/channel}' \
    2>/dev/null || true
}
installed=$(bundle_of)
if [ "$installed" = "$GATEWAY_API_VERSION $GATEWAY_API_CHANNEL" ]; then
  note "already installed"
else
  [ -n "$installed" ] && note "replacing ${installed} with $GATEWAY_API_VERSION $GATEWAY_API_CHANNEL"
  k apply --server-side --force-conflicts --field-manager gwlib-cluster-up -f \
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/$GATEWAY_API_CHANNEL-install.yaml" >/dev/null
fi
k wait --for condition=Established --timeout 60s \
  crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io \
  crd/httproutes.gateway.networking.k8s.io crd/grpcroutes.gateway.networking.k8s.io >/dev/null

# -- 4. Traefik -------------------------------------------------------------------------------
say "4/7 Traefik $TRAEFIK_VERSION (chart $TRAEFIK_CHART_VERSION) with the Kubernetes Gateway provider"
helm repo add traefik https://traefik.github.io/charts --force-update >/dev/null
h upgrade --install traefik traefik/traefik --version "$TRAEFIK_CHART_VERSION" \
  --namespace traefik --create-namespace \
  --values "$HERE/manifests/traefik-values.yaml" \
  --set "image.tag=$TRAEFIK_VERSION" \
  --wait --timeout 5m >/dev/null
[ "$(bundle_of)" = "$GATEWAY_API_VERSION $GATEWAY_API_CHANNEL" ] ||
  die "the Gateway API CRDs are now $(bundle_of), not $GATEWAY_API_VERSION $GATEWAY_API_CHANNEL: a chart replaced them"
note "Gateway API CRDs still $GATEWAY_API_VERSION $GATEWAY_API_CHANNEL"

# -- 5. Linkerd -------------------------------------------------------------------------------
if [ "$SKIP_LINKERD" = 1 ]; then
  say "5/7 Linkerd: skipped (--skip-linkerd)"
else
  say "5/7 Linkerd $LINKERD_VERSION (charts $LINKERD_CHART_VERSION), its Gateway API CRD install disabled"
  certs="$STATE_DIR/linkerd"
  mkdir -p "$certs"
  if [ ! -s "$certs/issuer.key" ]; then
    note "making the mesh's trust anchor and issuer (ECDSA P-256) in $certs"
    (
      cd "$certs"
      openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
      openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=root.linkerd.cluster.local" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out ca.crt 2>/dev/null
      openssl ecparam -name prime256v1 -genkey -noout -out issuer.key 2>/dev/null
      openssl req -new -key issuer.key -subj "/CN=identity.linkerd.cluster.local" -out issuer.csr 2>/dev/null
      printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' > issuer.ext
      openssl x509 -req -in issuer.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 365 \
        -extfile issuer.ext -out issuer.crt 2>/dev/null
      chmod 600 ca.key issuer.key
    )
  else
    note "reusing the trust anchor and issuer in $certs"
  fi
  helm repo add linkerd-edge https://helm.linkerd.io/edge --force-update >/dev/null
  h upgrade --install linkerd-crds linkerd-edge/linkerd-crds --version "$LINKERD_CHART_VERSION" \
    --namespace linkerd --create-namespace --set installGatewayAPI=false --wait >/dev/null
  h upgrade --install linkerd-control-plane linkerd-edge/linkerd-control-plane --version "$LINKERD_CHART_VERSION" \
    --namespace linkerd \
    --set-file identityTrustAnchorsPEM="$certs/ca.crt" \
    --set-file identity.issuer.tls.crtPEM="$certs/issuer.crt" \
    --set-file identity.issuer.tls.keyPEM="$certs/issuer.key" \
    --set proxyInit.iptablesMode="$LINKERD_IPTABLES_MODE" \
    --wait --timeout 10m >/dev/null
  h upgrade --install linkerd-viz linkerd-edge/linkerd-viz --version "$LINKERD_CHART_VERSION" \
    --namespace linkerd-viz --create-namespace --wait --timeout 10m >/dev/null
  [ "$(bundle_of)" = "$GATEWAY_API_VERSION $GATEWAY_API_CHANNEL" ] ||
    die "the Gateway API CRDs are now $(bundle_of): Linkerd installed its own"
  note "Gateway API CRDs still $GATEWAY_API_VERSION $GATEWAY_API_CHANNEL"
fi

# -- 6. Argo Rollouts -------------------------------------------------------------------------
if [ "$SKIP_ARGO" = 1 ]; then
  say "6/7 Argo Rollouts: skipped (--skip-argo)"
else
  say "6/7 Argo Rollouts $ARGO_ROLLOUTS_VERSION (chart $ARGO_ROLLOUTS_CHART_VERSION), Gateway API plugin $ARGO_ROLLOUTS_GATEWAYAPI_PLUGIN_VERSION"
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) die "no Gateway API plugin build for $(uname -m)" ;;
  esac
  plugin="https://github.com/argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi/releases/download/$ARGO_ROLLOUTS_GATEWAYAPI_PLUGIN_VERSION/gatewayapi-plugin-linux-$arch"
  helm repo add argo https://argoproj.github.io/argo-helm --force-update >/dev/null
  h upgrade --install argo-rollouts argo/argo-rollouts --version "$ARGO_ROLLOUTS_CHART_VERSION" \
    --namespace argo-rollouts --create-namespace \
    --set "controller.trafficRouterPlugins[0].name=argoproj-labs/gatewayAPI" \
    --set "controller.trafficRouterPlugins[0].location=$plugin" \
    --wait --timeout 5m >/dev/null
  k apply --server-side --field-manager gwlib-cluster-up -f "$HERE/manifests/argo-rollouts-gatewayapi-rbac.yaml" >/dev/null
fi

# -- 7. echo backends -------------------------------------------------------------------------
say "7/7 echo backend ($ECHO_IMAGE) and a request through Traefik"
if docker image inspect "$ECHO_IMAGE" >/dev/null 2>&1 || docker pull -q "$ECHO_IMAGE" >/dev/null 2>&1; then
  kind load docker-image "$ECHO_IMAGE" --name "$CLUSTER_NAME" >/dev/null 2>&1 ||
    note "could not preload the echo image into the node: the cluster pulls it itself"
fi
sed "s|@ECHO_IMAGE@|$ECHO_IMAGE|" "$HERE/manifests/smoke.yaml" |
  k apply --server-side --field-manager gwlib-cluster-up -f - >/dev/null
k -n gwlib-smoke rollout status deployment/echo --timeout 180s >/dev/null
answer=""
for _ in $(seq 1 30); do
  answer=$(curl -fsS --max-time 3 -H 'Host: smoke.gwlib.test' "http://127.0.0.1:$HTTP_PORT/smoke" 2>/dev/null || true)
  case "$answer" in *'"namespace"'*'gwlib-smoke'*) break ;; esac
  sleep 2
done
case "$answer" in
  *'"namespace"'*'gwlib-smoke'*) note "GET http://127.0.0.1:$HTTP_PORT/smoke (Host smoke.gwlib.test) answered by the echo" ;;
  *) die "no answer from the echo through Traefik on 127.0.0.1:$HTTP_PORT (kubectl --context $CONTEXT -n traefik logs deploy/traefik)" ;;
esac

say "ready: kube context $CONTEXT"
note "export GWLIB_MODE=cluster GWLIB_CONTEXT=$CONTEXT"
if [ "$HTTP_PORT" != 8080 ] || [ "$HTTPS_PORT" != 8443 ]; then
  note "export GWLIB_CLUSTER_PORTS=80=$HTTP_PORT,443=$HTTPS_PORT"
fi
note "gwlib cluster clean removes what gwlib applied; scripts/cluster-down.sh removes the cluster"
