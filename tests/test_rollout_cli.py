"""``gwlib rollout run`` exactly as design §4.1 says."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from gwlib.commands import rollout as cmd

TALK = "data/rollouts/talk"


def gwlib_main(argv: list[str]) -> int:
    """The ``gwlib`` command (through gwlib.cli once "rollout" is registered there)."""
    from gwlib import cli
    if "rollout" in getattr(cli, "_COMMAND_MODULES", ()):
        return cli.main(argv)
    parser = cli._Parser(prog="gwlib")
    sub = parser.add_subparsers(dest="command", parser_class=cli._Parser)
    sub.required = True
    cmd.add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def run(capsys, *argv: str):
    try:
        code = gwlib_main(["rollout", "run", *argv])
    except SystemExit as exc:          # argparse usage errors
        code = exc.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def test_healthy_exit_0_and_the_json_timeline(capsys):
    code, out, err = run(capsys, "-f", TALK, "--requests-per-step", "300")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["rollout"] == "rollouts-demo/rollouts-demo"
    assert d["phase"] == "Healthy" and d["aborted_at_step"] is None and isinstance(d["message"], str)
    assert len(d["steps"]) == 10
    s = d["steps"][0]
    assert {"index", "step", "weights", "analysis", "requests", "errors"} <= set(s)
    assert s["step"] == {"setWeight": 20} and s["requests"] == 300
    assert s["weights"] == {"rollouts-demo/rollouts-demo-stable": 80, "rollouts-demo/rollouts-demo-canary": 20}
    a = d["steps"][2]["analysis"]
    assert a["phase"] == "Successful"
    assert [(m["metric"], m["phase"]) for m in a["measurements"]][:2] == [("success-rate", "Successful"),
                                                                         ("p99-latency", "Successful")]
    assert isinstance(a["measurements"][0]["value"], float)


@pytest.mark.parametrize("fault", ["v2:error-rate=0.05", "v2:latency-ms=50", "canary:error-rate=0.05,latency-ms=50"])
def test_fault_aborts_exit_1(capsys, fault):
    code, out, err = run(capsys, "-f", TALK, "--fault", fault, "--requests-per-step", "500")
    assert code == 1
    d = json.loads(out)
    assert d["phase"] == "Degraded" and d["aborted_at_step"] == 2
    assert d["steps"][2]["analysis"]["phase"] == "Failed"
    assert d["message"].startswith("RolloutAborted:")


def test_seed_makes_runs_repeatable(capsys):
    a = run(capsys, "-f", TALK, "--fault", "v2:error-rate=0.02", "--seed", "4", "--requests-per-step", "200")[1]
    b = run(capsys, "-f", TALK, "--fault", "v2:error-rate=0.02", "--seed", "4", "--requests-per-step", "200")[1]
    c = run(capsys, "-f", TALK, "--fault", "v2:error-rate=0.02", "--seed", "5", "--requests-per-step", "200")[1]
    assert a == b and a != c


def test_paused_is_exit_1(capsys):
    code, out, _ = run(capsys, "-f", "data/rollouts/header-route")
    assert code == 1 and json.loads(out)["phase"] == "Paused"


def test_table_output(capsys):
    code, out, _ = run(capsys, "-f", TALK, "-o", "table", "--requests-per-step", "100")
    assert code == 0
    assert out.startswith("rollout rollouts-demo/rollouts-demo: Healthy")
    assert "setWeight 20" in out and "final weights:" in out


@pytest.mark.parametrize("argv, message", [
    (["--fault", "v2"], "--fault 'v2': expected VERSION:error-rate=R,latency-ms=MS"),
    (["--fault", "v2:speed=3"], "unknown setting 'speed' (use error-rate, latency-ms)"),
    (["--fault", "v2:error-rate=2"], "error-rate must be between 0 and 1"),
    (["--fault", "v2:latency-ms=fast"], "latency-ms must be a number, not 'fast'"),
    (["--fault", "v9:error-rate=0.1"], "no version 'v9': the rollout runs v1 (stable) and v2 (canary)"),
])
def test_bad_faults_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "-f", TALK, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "-f", TALK, "--requests-per-step", "0")[0] == 2
    assert run(capsys, "-f", TALK, "--dataplane", "nginx")[0] == 2
    assert run(capsys, "-f", TALK, "-o", "yaml")[0] == 2
    assert run(capsys)[0] == 2


def test_invalid_input_exit_2_with_one_line_per_problem(capsys, tmp_path):
    code, _, err = run(capsys, "-f", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml:0" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    text = "\n---\n".join(p.read_text() for p in sorted(Path(TALK).iterdir()))
    (bad / "all.yaml").write_text(text.replace("weight: 0", "weight: -1"))
    code, _, err = run(capsys, "-f", str(bad))
    assert code == 2
    assert "HTTPRoute rollouts-demo/rollouts-demo: spec.rules[0].backendRefs[1].weight" in err
    (bad / "all.yaml").write_text(text.replace("response_total", "istio_requests_total"))
    code, _, err = run(capsys, "-f", str(bad))
    assert code == 2
    assert "spec.metrics[0].provider.prometheus.query: metric 'success-rate': gwlib cannot answer its query: " \
           "gwlib records no series named 'istio_requests_total'" in err
    (bad / "all.yaml").write_text(text.replace("httpRoute: rollouts-demo\n", "httpRoute: rollouts-demo\n            configMap: x\n"))
    code, _, err = run(capsys, "-f", str(bad))
    assert code == 2 and "configMap: removed in plugin v0.13.0" in err
    assert all(line.startswith(str(bad)) for line in err.strip().splitlines())


def test_no_rollout_exit_2(capsys):
    code, _, err = run(capsys, "-f", "data/rollouts/weights")
    assert code == 2 and "no Rollout" in err


def test_parse_fault():
    assert cmd.parse_fault("v2:error-rate=0.05,latency-ms=50") == ("v2", {"error_rate": 0.05, "latency_ms": 50.0})
    with pytest.raises(ValueError):
        cmd.parse_fault(":error-rate=0.1")


def test_parser_matches_the_contract():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cmd.add_parser(sub)
    args = parser.parse_args(["rollout", "run", "-f", "a", "-f", "b", "--dataplane", "traefik", "--seed", "3",
                              "--fault", "v2:error-rate=0.05,latency-ms=50", "--requests-per-step", "7", "-o", "table"])
    assert (args.files, args.dataplane, args.seed, args.fault, args.requests_per_step, args.output) == \
        (["a", "b"], "traefik", 3, ["v2:error-rate=0.05,latency-ms=50"], 7, "table")
    d = parser.parse_args(["rollout", "run", "-f", "a"])
    assert (d.dataplane, d.seed, d.fault, d.requests_per_step, d.output) == ("reference", 0, [], 1000, "json")


def test_through_a_real_traefik(capsys):
    code, out, err = run(capsys, "-f", TALK, "--dataplane", "traefik", "--fault", "v2:error-rate=0.05",
                         "--requests-per-step", "300", "--seed", "1")
    assert code == 1, err
    d = json.loads(out)
    assert d["phase"] == "Degraded" and d["aborted_at_step"] == 2
    assert d["steps"][0]["responses"] == {"rollouts-demo/rollouts-demo-stable": 240,
                                          "rollouts-demo/rollouts-demo-canary": 60}
