"""``gwlib status`` and ``gwlib route`` end to end (design §4.1)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gwlib.cli import main

ROOT = Path(__file__).resolve().parent.parent
TALK = ROOT / "data" / "manifests" / "talk"
MULTI = ROOT / "data" / "manifests" / "multi-namespace"
WORLD = ROOT / "tests" / "fixtures" / "semantics" / "status-world.yaml"
TALK_GW = "argocd/argocd-server-gateway"

needs_talk = pytest.mark.skipif(not TALK.exists(), reason="talk manifests not present")
needs_multi = pytest.mark.skipif(not MULTI.exists(), reason="multi-namespace manifests not present")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def jsonl(tmp_path, *lines):
    p = tmp_path / "requests.jsonl"
    p.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return str(p)


# --------------------------------------------------------------------------- status

@needs_talk
def test_status_json_is_a_kubectl_list(capsys):
    code, out, err = run(capsys, "status", "-f", str(TALK), "-o", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "List"
    kinds = [i["kind"] for i in doc["items"]]
    assert kinds == ["GatewayClass", "Gateway", "HTTPRoute", "HTTPRoute"]
    gw = doc["items"][1]
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert {c["type"]: c["status"] for c in gw["status"]["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    for r in doc["items"][2:]:
        (p,) = r["status"]["parents"]
        assert p["controllerName"] == "traefik.io/gateway-controller"
        assert all(c["status"] == "True" and c["observedGeneration"] == 1 for c in p["conditions"])


@needs_talk
def test_status_yaml_is_the_default(capsys):
    code, out, _ = run(capsys, "status", "-f", str(TALK))
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["kind"] == "List" and len(doc["items"]) == 4


@needs_talk
def test_status_with_several_files(capsys):
    files = sorted(str(p) for p in TALK.glob("*.yaml"))
    argv = ["status", "-o", "json"]
    for f in files:
        argv += ["-f", f]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and len(json.loads(out)["items"]) == 4


@needs_multi
def test_status_multi_namespace(capsys):
    code, out, _ = run(capsys, "status", "-f", str(MULTI), "-o", "json")
    assert code == 0
    items = json.loads(out)["items"]
    bad = [(i["metadata"]["namespace"], i["metadata"]["name"], c["reason"])
           for i in items if i["kind"] == "HTTPRoute"
           for p in i["status"]["parents"] for c in p["conditions"] if c["status"] != "True"]
    assert bad == [("team-b", "api-auth", "RefNotPermitted")]


def test_status_invalid_manifest_exits_1_with_one_line_per_problem(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
                   "spec:\n  rules:\n  - matches:\n    - path:\n        type: Exact\n        value: nope\n"
                   "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: g\nspec: {}\n")
    code, out, err = run(capsys, "status", "-f", str(bad))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) >= 2 and all(str(bad) in l for l in lines)
    assert "Traceback" not in err


def test_status_missing_file_exits_1(capsys, tmp_path):
    code, out, err = run(capsys, "status", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1 and "nope.yaml" in err and "Traceback" not in err


def test_status_needs_a_file(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["status"])
    assert exc.value.code == 2


# --------------------------------------------------------------------------- route

@needs_talk
def test_route_talk_requests(capsys, tmp_path):
    reqs = jsonl(tmp_path,
                 {"gateway": TALK_GW, "port": 80, "host": "argocd.example.com", "path": "/applications?x=1"},
                 {"gateway": TALK_GW, "port": 443, "scheme": "https", "host": "argocd.example.com", "path": "/"},
                 {"gateway": TALK_GW, "host": "argocd.example.com", "path": "/"})
    code, out, err = run(capsys, "route", "-f", str(TALK), "--requests", reqs)
    assert code == 0 and err == ""
    answers = [json.loads(l) for l in out.splitlines()]
    assert len(answers) == 3
    assert answers[0]["status"] == 302 and answers[0]["location"] == "https://argocd.example.com/applications?x=1"
    assert answers[1]["status"] == 200
    assert answers[1]["backend"] == {"namespace": "argocd", "name": "argocd-server", "port": 80}
    assert answers[2]["status"] == 302


@needs_talk
def test_route_malformed_lines_get_errors_and_the_rest_continue(capsys, tmp_path):
    reqs = jsonl(tmp_path,
                 {"gateway": TALK_GW, "host": "argocd.example.com", "path": "/"},
                 "{not json",
                 "[1, 2]",
                 {"gateway": "nope/none", "path": "/"},
                 "",
                 {"gateway": TALK_GW, "port": 443, "scheme": "https", "host": "argocd.example.com", "path": "/"})
    code, out, _ = run(capsys, "route", "-f", str(TALK), "--requests", reqs)
    assert code == 0
    answers = [json.loads(l) for l in out.splitlines()]
    assert len(answers) == 5
    assert answers[0]["status"] == 302
    assert set(answers[1]) == {"error"} and "line 2" in answers[1]["error"]
    assert set(answers[2]) == {"error"} and "line 3" in answers[2]["error"]
    assert set(answers[3]) == {"error"} and "nope/none" in answers[3]["error"]
    assert answers[4]["status"] == 200


@needs_talk
def test_route_single_request_from_flags(capsys):
    code, out, _ = run(capsys, "route", "-f", str(TALK), "--gateway", TALK_GW, "--host", "argocd.example.com",
                       "--path", "/x", "--method", "GET", "--header", "X-Env=canary")
    assert code == 0
    ans = json.loads(out)
    assert ans["status"] == 302 and ans["location"] == "https://argocd.example.com/x"


@needs_multi
def test_route_single_request_headers_reach_the_backend(capsys):
    code, out, _ = run(capsys, "route", "-f", str(MULTI), "--gateway", "infra/shared-gateway", "--host",
                       "team-a.apps.example.com", "--path", "/", "--header", "x-env=canary", "--header", "X-Two=a=b")
    assert code == 0
    ans = json.loads(out)
    assert ans["backend"]["name"] == "web"
    assert ans["request"]["headers"] == {"X-Env": "canary", "X-Two": "a=b"}


@needs_talk
def test_route_single_request_unknown_gateway_exits_1(capsys):
    code, out, err = run(capsys, "route", "-f", str(TALK), "--gateway", "x/y", "--host", "h", "--path", "/")
    assert code == 1 and out == "" and "x/y" in err and len(err.strip().splitlines()) == 1


@needs_talk
def test_route_table_output(capsys, tmp_path):
    reqs = jsonl(tmp_path, {"gateway": TALK_GW, "host": "argocd.example.com", "path": "/"}, "oops")
    code, out, _ = run(capsys, "route", "-f", str(TALK), "--requests", reqs, "-o", "table")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["#", "request", "status"]
    assert "302" in lines[1] and "https://argocd.example.com/" in lines[1]
    assert "error" in lines[2] and "line 2" in lines[2]


def test_route_needs_requests_or_gateway(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["route", "-f", str(WORLD)])
    assert exc.value.code == 2


def test_route_requests_and_gateway_are_exclusive(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["route", "-f", str(WORLD), "--requests", jsonl(tmp_path, {}), "--gateway", "a/b"])
    assert exc.value.code == 2


def test_route_missing_requests_file_exits_1(capsys, tmp_path):
    code, _, err = run(capsys, "route", "-f", str(WORLD), "--requests", str(tmp_path / "none.jsonl"))
    assert code == 1 and "none.jsonl" in err


def test_route_bad_header_flag_is_a_usage_error(capsys):
    code, _, err = run(capsys, "route", "-f", str(WORLD), "--gateway", "edge/edge", "--header", "novalue")
    assert code == 2 and "NAME=VALUE" in err


def test_route_on_folder_fixture(capsys, tmp_path):
    reqs = jsonl(tmp_path, {"gateway": "edge/edge", "host": "shop.example.com", "path": "/"},
                 {"gateway": "edge/edge", "port": 443, "scheme": "https", "host": "shop.example.com", "path": "/"},
                 {"gateway": "edge/edge", "port": 443, "scheme": "https", "host": "bank.example.com", "path": "/"})
    code, out, _ = run(capsys, "route", "-f", str(WORLD.parent / "status-world.yaml"), "--requests", reqs)
    answers = [json.loads(l) for l in out.splitlines()]
    assert code == 0
    assert answers[0]["backend"]["name"] == "shop" and answers[1]["backend"]["name"] == "shop"
    assert answers[2]["status"] is None and "TLS handshake" in answers[2]["error"]


@needs_talk
def test_cli_as_a_process_reads_stdin(tmp_path):
    line = json.dumps({"gateway": TALK_GW, "port": 443, "scheme": "https", "host": "argocd.example.com", "path": "/"})
    proc = subprocess.run([sys.executable, "-m", "gwlib", "route", "-f", str(TALK), "--requests", "-"],
                          input=line + "\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["backend"]["name"] == "argocd-server"


def test_cli_as_a_process_never_prints_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    proc = subprocess.run([sys.executable, "-m", "gwlib", "status", "-f", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.strip()


@needs_talk
def test_route_talk_requests_fixture(capsys):
    reqs = ROOT / "tests" / "fixtures" / "semantics" / "talk-requests.jsonl"
    code, out, _ = run(capsys, "route", "-f", str(TALK), "--requests", str(reqs))
    answers = [json.loads(l) for l in out.splitlines()]
    assert code == 0
    assert [a["status"] for a in answers] == [302, 200, 200, 404]
    assert answers[0]["location"] == "https://argocd.example.com/applications?project=default"
    assert answers[1]["backend"] == answers[2]["backend"] == {"namespace": "argocd", "name": "argocd-server", "port": 80}
    assert answers[2]["request"]["headers"] == {"Content-Type": "application/json"}
