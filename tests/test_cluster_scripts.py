"""The bootstrap scripts: shellcheck, the pinned versions (one file, each documented, fitting
together), and what can be checked without Docker."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gwlib import compat

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
UP, DOWN, VERSIONS = SCRIPTS / "cluster-up.sh", SCRIPTS / "cluster-down.sh", SCRIPTS / "versions.env"


def versions() -> dict[str, str]:
    return compat.bootstrap_versions(VERSIONS)


def test_shellcheck():
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for cwd in (ROOT, SCRIPTS):   # the source directive resolves from the script's folder, wherever it runs
        proc = subprocess.run([exe, "-x", str(UP), str(DOWN), str(VERSIONS)], cwd=cwd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_are_executable_strict_and_parse():
    for script in (UP, DOWN):
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "\nset -euo pipefail\n" in text
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        subprocess.run(["bash", "-n", str(script)], check=True)


def test_every_version_is_pinned_once_with_a_comment_and_a_source():
    lines = VERSIONS.read_text().splitlines()
    names = []
    for i, line in enumerate(lines):
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(\S+)", line.strip())
        if not m:
            continue
        names.append(m.group(1))
        block = []
        j = i - 1
        while j >= 0 and lines[j].startswith("#"):
            block.append(lines[j])
            j -= 1
        assert len(block) >= 2, f"{m.group(1)} has no comment saying what and why"
        assert any(re.search(r"Source: https://", b) for b in block), f"{m.group(1)} names no source"
        assert m.group(2) not in ("latest", "main", "master") and "*" not in m.group(2)
    assert len(names) == len(set(names))
    assert set(names) == {"KIND_VERSION", "KIND_NODE_IMAGE", "GATEWAY_API_VERSION", "GATEWAY_API_CHANNEL",
                          "TRAEFIK_VERSION", "TRAEFIK_CHART_VERSION", "LINKERD_VERSION", "LINKERD_CHART_VERSION",
                          "ARGO_ROLLOUTS_VERSION", "ARGO_ROLLOUTS_CHART_VERSION",
                          "ARGO_ROLLOUTS_GATEWAYAPI_PLUGIN_VERSION", "ECHO_IMAGE"}
    assert "@sha256:" in versions()["KIND_NODE_IMAGE"]


def test_no_version_is_written_anywhere_else_in_the_scripts():
    pinned = versions()
    for script in (UP, DOWN, *(SCRIPTS / "manifests").glob("*.yaml")):
        text = script.read_text()
        for value in pinned.values():
            if len(value) > 5 and any(ch.isdigit() for ch in value):
                assert value not in text, f"{script.name} repeats {value}: use the variable from versions.env"
        assert not re.search(r"--version\s+[0-9v]", text), f"{script.name} pins a version outside versions.env"


def test_the_pins_match_gwlib():
    from gwlib.cluster import echo
    from gwlib.rollout import manifests

    v = versions()
    assert v["ECHO_IMAGE"] == echo.ECHO_IMAGE
    assert v["ARGO_ROLLOUTS_GATEWAYAPI_PLUGIN_VERSION"] == manifests.PLUGIN_VERSION
    assert f"Gateway API {v['GATEWAY_API_VERSION']}" in (ROOT / "gwlib" / "validation.py").read_text()
    assert v["LINKERD_CHART_VERSION"] == "20" + v["LINKERD_VERSION"].removeprefix("edge-")


def test_the_pinned_stack_fits_together():
    """gwlib's own version-skew knowledge: no error for the stack the script installs."""

    v = versions()
    findings = compat.check(gateway_api=v["GATEWAY_API_VERSION"], channel=v["GATEWAY_API_CHANNEL"],
                            linkerd=v["LINKERD_VERSION"], traefik=v["TRAEFIK_VERSION"],
                            argo_rollouts_plugin=v["ARGO_ROLLOUTS_GATEWAYAPI_PLUGIN_VERSION"])
    assert not compat.has_errors(findings), compat.text_table(findings)
    # the one warning there is, documented next to LINKERD_VERSION: Linkerd's range ends at v1.5.1
    assert {f.severity for f in findings} <= {"warning", "info"}
    assert "v1.5.1" in VERSIONS.read_text()


def test_crds_go_in_before_any_chart_and_linkerd_leaves_them_alone():
    text = UP.read_text()
    crds = text.index("gateway-api/releases/download/")
    assert crds < text.index("upgrade --install traefik") < text.index("upgrade --install linkerd-crds")
    assert "--set installGatewayAPI=false" in text
    assert text.count('die "the Gateway API CRDs are now') == 2      # checked after Traefik and after Linkerd


def test_ports_agree_between_kind_traefik_and_gwlib():
    from gwlib.cluster import DEFAULT_PORTS

    text = UP.read_text()
    values = yaml.safe_load((SCRIPTS / "manifests" / "traefik-values.yaml").read_text())
    ports = values["ports"]
    assert (ports["web"]["port"], ports["websecure"]["port"]) == (80, 443)        # Gateway listener ports
    node = {ports["web"]["nodePort"], ports["websecure"]["nodePort"]}
    assert {int(p) for p in re.findall(r"containerPort: (\d+)", text)} == node
    assert re.search(r"HTTP_PORT=\$\{HTTP_PORT:-(\d+)\}", text).group(1) == str(DEFAULT_PORTS[80])
    assert re.search(r"HTTPS_PORT=\$\{HTTPS_PORT:-(\d+)\}", text).group(1) == str(DEFAULT_PORTS[443])
    assert text.count('listenAddress: "127.0.0.1"') == 2                           # only on this machine
    assert values["providers"]["kubernetesGateway"]["enabled"] is True
    assert values["gateway"]["enabled"] is False and values["gatewayClass"]["enabled"] is False


def test_the_manifests_validate():
    import gwlib

    smoke = (SCRIPTS / "manifests" / "smoke.yaml").read_text().replace("@ECHO_IMAGE@", versions()["ECHO_IMAGE"])
    assert gwlib.validate(smoke) == []
    objs = gwlib.load(smoke)
    assert all(o.labels.get("app.kubernetes.io/part-of") == "gwlib-cluster" for o in objs)
    assert not any("app.kubernetes.io/managed-by" in o.labels for o in objs)     # gwlib cluster clean keeps it
    assert gwlib.validate(SCRIPTS / "manifests" / "argo-rollouts-gatewayapi-rbac.yaml") == []


def _stub_path(tmp_path: Path, stubs: dict[str, str], real: tuple[str, ...]) -> str:
    """A PATH with only ``stubs`` (shell snippets) and links to the ``real`` tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in stubs.items():
        p = bin_dir / name
        p.write_text(f"#!/bin/sh\n{body}\n")
        p.chmod(0o755)
    for name in real:
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    return str(bin_dir)


TOOLS = ("bash", "dirname", "sed", "awk", "grep", "rm", "cat", "mkdir", "uname", "seq", "sleep", "env")


def test_cluster_down_is_idempotent(tmp_path):
    log = tmp_path / "kind.log"
    kind = (f'echo "$@" >> {log}\n'
            f'if [ "$1 $2" = "get clusters" ]; then [ -f {tmp_path}/exists ] && echo gwlib; exit 0; fi\n'
            f'if [ "$1 $2" = "delete cluster" ]; then rm -f {tmp_path}/exists; fi')
    path = _stub_path(tmp_path, {"kind": kind}, TOOLS)
    env = {"PATH": path, "HOME": str(tmp_path)}
    (tmp_path / "exists").touch()
    state = tmp_path / ".cache" / "gwlib" / "gwlib"
    state.mkdir(parents=True)
    first = subprocess.run(["bash", str(DOWN)], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "delete cluster --name gwlib" in log.read_text() and state.exists()
    again = subprocess.run(["bash", str(DOWN), "--purge"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "not there: nothing to delete" in again.stdout
    assert not state.exists()
    bad = subprocess.run(["bash", str(DOWN), "--bogus"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument: --bogus" in bad.stderr


def test_cluster_up_says_what_is_missing(tmp_path):
    path = _stub_path(tmp_path, {}, TOOLS)
    proc = subprocess.run(["bash", str(UP)], env={"PATH": path, "HOME": str(tmp_path)}, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["==> 1/7 checking the tools"]
    assert proc.stderr == 'cluster-up.sh: docker is not installed (see README, "Cluster mode")\n'
    helped = subprocess.run(["bash", str(UP), "--help"], env={"PATH": path}, capture_output=True, text=True)
    assert helped.returncode == 0 and "installs the Gateway API CRDs" in helped.stdout
    assert "Usage: scripts/cluster-up.sh" in helped.stdout and "set -euo" not in helped.stdout


def test_cluster_up_stops_when_docker_is_not_running(tmp_path):
    stubs = {"docker": "exit 1", "kind": "echo 'kind v0.33.0 go1.25 linux/amd64'", "kubectl": "exit 0",
             "helm": "exit 0", "openssl": "exit 0", "curl": "exit 0"}
    path = _stub_path(tmp_path, stubs, TOOLS)
    proc = subprocess.run(["bash", str(UP)], env={"PATH": path, "HOME": str(tmp_path)}, capture_output=True, text=True)
    assert proc.returncode == 1 and "docker is not running" in proc.stderr
