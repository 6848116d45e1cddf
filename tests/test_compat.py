"""``gwlib compat check``: the talk's three pain points as findings on matching inputs, clean
on good setups; the data in data/compat has a source for every entry."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gwlib import cli, compat

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "compat"


def ids(findings, severity=None):
    return [f.check for f in findings if severity is None or f.severity == severity]


@pytest.fixture
def gwlib_cli(monkeypatch, capsys):
    if "compat" not in cli._COMMAND_MODULES:   # until gwlib/cli.py registers it
        monkeypatch.setattr(cli, "_COMMAND_MODULES", cli._COMMAND_MODULES + ("compat",))

    def run(*argv):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:   # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


def crd(kind, versions, bundle="v1.2.1", channel="standard", storage=None, annotate=True):
    meta = {"name": f"{kind.lower()}s.gateway.networking.k8s.io"}
    if annotate:
        meta["annotations"] = {"gateway.networking.k8s.io/bundle-version": bundle,
                               "gateway.networking.k8s.io/channel": channel}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta,
            "spec": {"group": "gateway.networking.k8s.io", "names": {"kind": kind},
                     "versions": [{"name": v, "served": True, "storage": v == (storage or versions[0])}
                                  for v in versions]}}


def release_crds(version, channel="standard"):
    rel = compat.gateway_api_release(version)
    return [crd(k, v, rel["version"], channel) for k, v in rel["served"][channel].items()]


# =========================================================================== pain point 1

def test_pain_point_crds_not_in_tree_two_charts_install_them():
    # the talk: Linkerd 2.17's linkerd-crds and Traefik's chart both install the CRDs
    f = compat.check(linkerd="2.17", traefik="v3.2")
    (c,) = [x for x in f if x.check == "crds-not-in-tree"]
    assert c.severity == "error" and c.kind == "CustomResourceDefinition"
    assert {"gateway-api", "linkerd", "traefik"} <= set(c.components)
    assert "v0.7.1 experimental" in c.message and "v1.2.0 standard" in c.message
    assert "linkerd/linkerd2/issues/12232" in c.source and "installGatewayAPI=false" in c.fix


def test_pain_point_crds_not_in_tree_nothing_installs_them():
    (f,) = compat.check(linkerd="2.19")
    assert (f.severity, f.check) == ("error", "no-gateway-api")


def test_pain_point_crds_not_in_tree_mixed_installers(tmp_path):
    docs = [crd("HTTPRoute", ["v1beta1"], bundle="v0.7.1", channel="experimental"),
            crd("GRPCRoute", ["v1"], bundle="v1.2.0"), crd("Gateway", ["v1", "v1beta1"], bundle="v1.2.0")]
    (tmp_path / "crds.yaml").write_text(yaml.safe_dump_all(docs))
    f = compat.check(crds=tmp_path, linkerd="2.19")
    mixed = [x for x in f if x.check == "mixed-bundle"]
    assert mixed and mixed[0].severity == "error" and "v0.7.1: HTTPRoute" in mixed[0].message


def test_linkerd_chart_installing_over_your_crds_is_a_warning():
    f = compat.check(gateway_api="v1.1.1", channel="experimental", linkerd="2.16")
    assert ids(f) == ["crds-not-in-tree"] and f[0].severity == "warning"
    assert "enableHttpRoutes=false" in f[0].message


# =========================================================================== pain point 2

@pytest.mark.parametrize("kw", [
    dict(gateway_api="v1.2.1", linkerd="2.17"),
    dict(gateway_api="v1.1.1", linkerd="2.16.2"),                 # standard 1.1: v1 only
    dict(gateway_api="1.1.1", linkerd="edge-24.11.8"),
    dict(gateway_api="v1.2.1", channel="experimental", linkerd="2.17"),   # v1alpha2 removed in 1.2
])
def test_pain_point_linkerd_does_not_read_grpcroute_v1(kw):
    f = compat.check(**kw)
    (g,) = [x for x in f if x.check == "linkerd-grpcroute-v1"]
    assert g.severity == "error" and g.kind == "GRPCRoute" and g.components[:2] == ("linkerd", "gateway-api")
    assert g.source == "https://github.com/linkerd/linkerd2/issues/13032"
    assert "2.18" in g.fix


def test_experimental_1_1_1_serves_both_grpcroute_versions():
    f = compat.check(gateway_api="v1.1.1", channel="experimental", linkerd="2.17")
    assert "linkerd-grpcroute-v1" not in ids(f)


def test_edges_between_2_17_and_2_18_are_a_warning_that_says_so():
    f = compat.check(gateway_api="v1.2.1", linkerd="edge-25.2.1")
    (g,) = [x for x in f if x.check == "linkerd-grpcroute-v1"]
    assert g.severity == "warning" and "#13643" in g.message


def test_grpcroute_v1_with_the_argo_plugin_names_it():
    f = compat.check(gateway_api="v1.1.1", linkerd="2.17", argo_rollouts_plugin="v0.4.0")
    (g,) = [x for x in f if x.check == "linkerd-grpcroute-v1"]
    assert "argo-rollouts-plugin" in g.components


def test_gateway_api_1_1_0_broke_grpcroute_v1alpha2_status_and_1_1_1_fixed_it():
    f = compat.check(gateway_api="v1.1.0", channel="experimental", linkerd="2.16")
    (g,) = [x for x in f if x.check == "grpcroute-v1alpha2-status"]
    assert g.severity == "error" and "3411" in g.source and "v1.1.1" in g.fix
    assert "grpcroute-v1alpha2-status" not in ids(compat.check(gateway_api="v1.1.1", channel="experimental",
                                                               linkerd="2.16"))


# =========================================================================== pain point 3

def test_pain_point_traefik_chart_bundles_the_crds():
    f = compat.check(linkerd="2.17", traefik="v3.2")
    (t,) = [x for x in f if x.check == "traefik-chart-crds"]
    assert t.severity == "error" and t.source == "https://github.com/traefik/traefik-helm-chart/issues/1209"
    assert "#1223" in t.fix and "--skip-crds" in t.fix
    # and it is the chart's standard CRDs that leave Linkerd without GRPCRoute v1alpha2
    (g,) = [x for x in f if x.check == "linkerd-grpcroute-v1"]
    assert "traefik" in g.components and "Traefik's chart" in g.message


def test_traefik_chart_over_your_own_crds_of_another_release():
    f = compat.check(gateway_api="v1.2.1", traefik="v3.7.0")
    assert ids(f, "warning")[:1] == ["traefik-chart-crds"] and not ids(f, "error")


def test_traefik_alone_warns_that_the_chart_chose_the_crds():
    f = compat.check(traefik="v3.7.10")
    assert ids(f) == ["traefik-chart-crds"] and f[0].severity == "warning" and "v1.6.1" in f[0].message


# =========================================================================== clean setups

@pytest.mark.parametrize("kw", [
    dict(gateway_api="v1.2.1", linkerd="2.19", traefik="v3.2", argo_rollouts_plugin="v0.8.0"),
    dict(gateway_api="v1.2.1", linkerd="2.20", traefik="v3.2.3", argo_rollouts_plugin="v0.13.0"),
    dict(gateway_api="v1.2.1", linkerd="edge-25.10.7"),
    dict(gateway_api="v1.5.1", linkerd="2.20", traefik="v3.7.0", argo_rollouts_plugin="v0.13.0"),
    dict(gateway_api="v1.2.1"),
    dict(),
])
def test_a_good_setup_is_clean(kw):
    assert compat.check(**kw) == []


def test_installed_crds_of_a_good_release_are_clean(tmp_path):
    (tmp_path / "crds.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                        "items": release_crds("v1.2.1")}))
    assert compat.check(crds=tmp_path / "crds.yaml", linkerd="2.19", traefik="v3.2") == []


def test_installed_crds_are_read_like_the_cluster_serves_them(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all(release_crds("v1.1.1", "standard")))
    have = compat.installed(tmp_path)
    assert have.served["GRPCRoute"] == ["v1"] and have.release["version"] == "v1.1.1" and have.channel == "standard"
    f = compat.check(crds=tmp_path, linkerd="2.17")
    assert "linkerd-grpcroute-v1" in ids(f, "error")


def test_crds_without_annotations_and_without_httproute(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(crd("GRPCRoute", ["v1"], annotate=False)))
    f = compat.check(crds=tmp_path, linkerd="2.19")
    assert {"mixed-bundle", "no-gateway-api"} <= set(ids(f))


def test_other_skew():
    f = compat.check(gateway_api="v1.3.0", linkerd="2.19")
    assert ids(f) == ["linkerd-range"] and "#14846" in f[0].message
    f = compat.check(gateway_api="v1.1.1", argo_rollouts_plugin="0.13.0")
    assert ids(f) == ["plugin-min"] and f[0].severity == "error"
    f = compat.check(gateway_api="v0.7.1", argo_rollouts_plugin="0.3.0", linkerd="2.18")
    assert "plugin-min" in ids(f, "error") and "linkerd-httproute-v1" in ids(f, "error")
    f = compat.check(linkerd="2.13", gateway_api="v1.2.1")
    assert ids(f) == ["linkerd-range"] and f[0].kind == "HTTPRoute"


@pytest.mark.parametrize("text,version,between", [
    ("2.17", "2.17", False), ("2.17.1", "2.17", False), ("stable-2.14.10", "2.14", False),
    ("version-2.18", "2.18", False), ("edge-24.11.8", "2.17", False), ("edge-25.4.4", "2.18", False),
    ("edge-25.1.2", "2.17", True), ("edge-26.9.1", "2.20", False),
])
def test_linkerd_versions(text, version, between):
    r = compat.linkerd_release(text)
    assert r.entry["version"] == version and r.between is between


@pytest.mark.parametrize("bad", [dict(linkerd="two"), dict(gateway_api="v9.9.9"), dict(traefik="latest"),
                                 dict(argo_rollouts_plugin="x"), dict(gateway_api="v1.2.1", crds="x")])
def test_bad_input_is_a_compat_error(bad):
    with pytest.raises(compat.CompatError):
        compat.check(**bad)


# =========================================================================== the command

def test_cli_json_contract(gwlib_cli):
    code, out, err = gwlib_cli("compat", "check", "--linkerd", "2.17", "--traefik", "v3.2", "-o", "json")
    assert code == 1 and err == ""
    findings = json.loads(out)
    assert findings and all(set(f) == {"severity", "components", "kind", "message", "fix", "source"}
                            for f in findings)
    assert all(f["severity"] in ("error", "warning", "info") and isinstance(f["components"], list) for f in findings)
    assert {f["source"] for f in findings} >= {"https://github.com/linkerd/linkerd2/issues/13032",
                                              "https://github.com/traefik/traefik-helm-chart/issues/1209"}


def test_cli_clean_and_table(gwlib_cli):
    code, out, _ = gwlib_cli("compat", "check", "--gateway-api", "v1.2.1", "--linkerd", "2.19", "-o", "json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = gwlib_cli("compat", "check", "--gateway-api", "v1.2.1", "--channel", "standard",
                             "--linkerd", "2.17")
    assert code == 1 and out.startswith("ERROR") and "fix:" in out and "source:" in out
    code, out, _ = gwlib_cli("compat", "check", "--gateway-api", "v1.1.1", "--channel", "experimental",
                             "--linkerd", "2.16")
    assert code == 0 and out.startswith("WARNING")


@pytest.mark.parametrize("argv", [
    ["--linkerd", "banana"],
    ["--channel", "experimental"],
    ["--gateway-api", "v1.2.1", "--crds", "x.yaml"],
    ["--crds", "/nonexistent/crds.yaml"],
    ["--gateway-api", "v1.2.1", "--channel", "alpha"],
])
def test_cli_usage_errors_exit_2(gwlib_cli, argv):
    code, out, err = gwlib_cli("compat", "check", *argv)
    assert code == 2 and out == "" and err and "Traceback" not in err


# =========================================================================== the data

def _entries(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _entries(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _entries(v, f"{path}[{i}]")


@pytest.mark.parametrize("name", ["gateway-api", "linkerd", "traefik", "argo-rollouts-plugin", "findings"])
def test_every_entry_has_a_source(name):
    doc = yaml.safe_load((DATA / f"{name}.yaml").read_text())
    listed = {"releases", "rules", "tested", "issues", "edge_changes", "known_issues", "fixes"}
    n = 0
    for path, entry in _entries(doc):
        parent = path.rsplit(".", 1)[-1].split("[")[0]
        if parent in listed or path.startswith(".checks.") and path.count(".") == 2:
            assert str(entry.get("source", "")).startswith("https://"), f"{name}{path} has no source"
            n += 1
    assert n >= 3


def test_the_data_covers_the_issue():
    lk = {r["version"]: r for r in compat.data("linkerd")["releases"]}
    assert lk["2.18"]["reads"]["GRPCRoute"] == ["v1"] and lk["2.17"]["reads"]["GRPCRoute"] == ["v1alpha2"]
    assert lk["2.17"]["crds"]["installed_by_default"] == {"cli": True, "helm": True}
    assert lk["2.19"]["crds"]["installed_by_default"] == {"cli": False, "helm": False}
    ga = {r["version"]: r for r in compat.data("gateway-api")["releases"]}
    assert ga["v1.1.0"]["served"]["standard"]["GRPCRoute"] == ["v1"]
    assert ga["v1.1.1"]["served"]["experimental"]["GRPCRoute"] == ["v1", "v1alpha2"]
    assert "GRPCRoute" not in ga["v1.0.0"]["served"]["standard"]
    assert ga["v1.6.1"]["served"]["standard"]["TCPRoute"] == ["v1"]
    assert compat.traefik_release("v3.2.1")["gateway_api"] == "v1.2.0"
    assert any(r["from"] == "v0.13.0" and r["min_gateway_api"] == "v1.2.0"
               for r in compat.data("argo-rollouts-plugin")["rules"])
    assert list(compat.channels("v1.6.1").query("kind == 'GRPCRoute'")["standard"]) == ["v1"]
    assert len(compat.matrix()) == 7


def test_bootstrap_versions_reads_the_pins_of_cluster_up(tmp_path):
    env = tmp_path / "versions.env"
    env.write_text("# a comment\n# shellcheck shell=bash\nLINKERD_VERSION=edge-26.6.3\n\nKIND_NODE_IMAGE=kindest/node:v1@sha256:ab\n"
                   "not a pin\nlower=case\n")
    assert compat.bootstrap_versions(env) == {"LINKERD_VERSION": "edge-26.6.3",
                                              "KIND_NODE_IMAGE": "kindest/node:v1@sha256:ab"}
    pins = compat.bootstrap_versions()    # the repository's own
    assert pins["GATEWAY_API_VERSION"] == "v1.6.1" and "ARGO_ROLLOUTS_GATEWAYAPI_PLUGIN_VERSION" in pins
