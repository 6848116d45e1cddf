"""Status reasons added after review: InvalidParameters and OverlappingTLSConfig, and the
list of §4.2-4.3 reasons gwlib never sets, each with why (so the choice is written down)."""
from __future__ import annotations

import pytest

from gwlib.connection import ReferenceConnection

CLASS = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ok}
spec: {controllerName: gwlib.dev/gateway-controller}
"""
SECRET = """
apiVersion: v1
kind: Secret
metadata: {name: t, namespace: infra}
type: kubernetes.io/tls
data: {tls.crt: "", tls.key: ""}
"""


def conditions(yaml_text: str, kind: str, obj: str, where: str = "") -> dict[str, tuple[str, str]]:
    conn = ReferenceConnection()
    conn.apply(yaml_text)
    frame = conn.status().to_frame()
    rows = frame[(frame["kind"] == kind) & (frame["object"] == obj) & (frame["where"] == where)]
    return {r.type: (r.status, r.reason) for r in rows.itertuples()}


@pytest.mark.parametrize("with_configmap, expected", [(False, ("False", "InvalidParameters")),
                                                      (True, ("True", "Accepted"))])
def test_gatewayclass_parameters_ref_must_exist(with_configmap, expected):
    text = CLASS.replace("spec: {controllerName: gwlib.dev/gateway-controller}",
                         "spec:\n  controllerName: gwlib.dev/gateway-controller\n"
                         "  parametersRef: {group: '', kind: ConfigMap, name: cfg, namespace: infra}")
    if with_configmap:
        text += "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: infra}\n"
    assert conditions(text, "GatewayClass", "ok")["Accepted"] == expected


@pytest.mark.parametrize("with_configmap, expected", [(False, ("False", "InvalidParameters")),
                                                      (True, ("True", "Accepted"))])
def test_gateway_infrastructure_parameters_ref_must_exist(with_configmap, expected):
    text = CLASS + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: g, namespace: infra}
spec:
  gatewayClassName: ok
  infrastructure: {parametersRef: {group: "", kind: ConfigMap, name: gwcfg}}
  listeners: [{name: http, protocol: HTTP, port: 80}]
"""
    if with_configmap:
        text += "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: gwcfg, namespace: infra}\n"
    conds = conditions(text, "Gateway", "infra/g")
    assert conds["Accepted"] == expected
    assert conds["Programmed"][0] == ("False" if not with_configmap else "True")


@pytest.mark.parametrize("hosts, overlapping", [
    (["*.example.com", "a.example.com"], {"a", "b"}),      # a wildcard covers a name
    (["a.example.com", "b.example.com"], set()),           # distinct names
    (["*.example.com", "*.other.com"], set()),             # distinct wildcards
    ([None, "a.example.com"], {"a", "b"}),                 # no hostname covers every name
])
def test_overlapping_tls_hostnames_on_one_port(hosts, overlapping):
    listeners = "\n".join(
        f"  - {{name: {n}, protocol: HTTPS, port: 443{', hostname: ' + repr(h) if h else ''}, "
        f"tls: {{certificateRefs: [{{name: t}}]}}}}" for n, h in zip("ab", hosts))
    text = CLASS + "---\n" + SECRET + f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: g, namespace: infra}}
spec:
  gatewayClassName: ok
  listeners:
{listeners}
"""
    got = {n for n in "ab"
           if conditions(text, "Gateway", "infra/g", f"listener {n}").get("OverlappingTLSConfig")
           == ("True", "OverlappingHostnames")}
    assert got == overlapping


#: Reasons of reference §4.2-4.3 that gwlib's controller never writes, and why.
NOT_APPLICABLE = {
    "UnsupportedVersion": "gwlib models exactly the CRDs it validates (v1.6.1); there are no CRDs to read",
    "NotReconciled": "deprecated in the spec",
    "NoResources": "the lab always has resources for a Gateway",
    "AddressNotAssigned": "every Gateway gets 127.0.0.1",
    "AddressNotUsable": "every Gateway gets 127.0.0.1",
    "PortUnavailable": "the lab maps every Gateway port to a free local port",
    "NoValidCACertificate": "frontend client-certificate validation is not implemented by the lab yet",
    "InvalidCACertificateRef": "frontend client-certificate validation is not implemented by the lab yet",
    "InvalidCACertificateKind": "frontend client-certificate validation is not implemented by the lab yet",
}


def test_reasons_written_down_as_not_applicable_are_never_set():
    """If gwlib starts setting one of these, the list (and notebook 03's table) must change."""
    from conftest import ROOT
    conn = ReferenceConnection()
    conn.apply(ROOT / "data" / "manifests" / "routing", ROOT / "data" / "manifests" / "talk",
               ROOT / "data" / "manifests" / "multi-namespace")
    seen = set(conn.status().to_frame()["reason"])
    assert "Accepted" in seen and not seen & set(NOT_APPLICABLE)
