"""gwlib.explain and the `gwlib validate` / `gwlib explain` commands."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gwlib
from gwlib.fielddoc import ExplainError
from conftest import ROOT


def gw(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gwlib", *args], capture_output=True, text=True,
                          cwd=ROOT, input=input, timeout=60)


def test_explain_a_leaf_field_shows_type_default_and_description():
    text = str(gwlib.explain("HTTPRoute.spec.rules.backendRefs.weight"))
    assert "FIELD: weight <integer>" in text
    assert "DEFAULT: 1" in text
    assert "DESCRIPTION:" in text and len(text.split("DESCRIPTION:")[1].strip()) > 40


def test_explain_an_enum_lists_its_values():
    text = str(gwlib.explain("HTTPRoute.spec.rules.matches.path.type"))
    assert "ENUM:" in text and "PathPrefix" in text and "Exact" in text


def test_explain_marks_experimental_only_fields():
    assert "experimental only" in str(gwlib.explain("HTTPRoute.spec.rules.retry"))


def test_explain_accepts_plurals_and_lists_fields():
    text = str(gwlib.explain("gateways.spec"))
    assert "KIND:       Gateway" in text and "listeners\t<[]Object> -required-" in text


@pytest.mark.parametrize("field", ["Nope", "HTTPRoute.spec.nope", "HTTPRoute.spec.hostnames.x"])
def test_explain_unknown_names_raise_a_clear_error(field):
    with pytest.raises(ExplainError):
        gwlib.explain(field)


def test_every_gateway_api_field_has_a_description():
    """Teaching material: no field of a Gateway API kind goes undocumented."""
    from pydantic import BaseModel
    from gwlib.fielddoc import _unwrap
    from gwlib import resources

    missing, seen = [], set()

    def walk(model: type[BaseModel], where: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            if not (info.description or "").strip():
                missing.append(f"{where}.{info.alias or name}")
            sub = _unwrap(info.annotation).model
            if sub is not None:
                walk(sub, f"{where}.{info.alias or name}")

    for version, kind in resources.KINDS:
        if version.startswith("gateway.networking.k8s.io/"):
            walk(resources.model_for(version, kind), kind)
    assert not missing, missing[:20]


def test_cli_validate_talk_manifests_exit_0():
    run = gw("validate", "data/manifests/talk")
    assert run.returncode == 0, run.stderr
    assert "valid" in run.stdout


def test_cli_validate_bad_input_one_line_per_problem_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                   "metadata: {name: r}\nspec:\n  hostnames: [Bad_Host]\n---\n: : :\n")
    run = gw("validate", str(bad))
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in run.stderr
    assert lines[0].startswith(f"{bad}:0 HTTPRoute default/r: spec.hostnames[0]: ")
    assert lines[1].startswith(f"{bad}:1 ") and "line" in lines[1]


def test_cli_validate_json_output(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 70000}]\n")
    run = gw("validate", "-o", "json", str(bad))
    assert run.returncode == 1
    (item,) = json.loads(run.stdout)
    assert item["path"] == "spec.ports[0].port" and item["kind"] == "Service" and item["name"] == "s"
    assert set(item) == {"file", "doc", "kind", "namespace", "name", "path", "message"}


@pytest.mark.parametrize("args", [[], ["validate"], ["validate", "--channel", "beta", "x"], ["nope"]])
def test_cli_usage_errors_exit_2_without_traceback(args):
    run = gw(*args)
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_cli_unreadable_path_is_a_problem_not_a_crash(tmp_path):
    run = gw("validate", str(tmp_path / "missing.yaml"))
    assert run.returncode == 1 and "no such file" in run.stderr and "Traceback" not in run.stderr


def test_cli_explain():
    run = gw("explain", "Gateway.spec.listeners.port")
    assert run.returncode == 0 and "FIELD: port <integer>" in run.stdout
    bad = gw("explain", "Gateway.spec.nope")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
