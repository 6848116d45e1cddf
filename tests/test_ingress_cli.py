"""``gwlib convert`` on the command line: YAML on stdout, the report on stderr, exit codes,
bad input as one clear line per object and never a traceback.

The command is registered by gwlib/cli.py (``_COMMAND_MODULES``); these tests drive
``gwlib.commands.convert`` through a small argparse harness so they do not depend on that.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys

import pytest
import yaml

from gwlib.commands import convert as convert_cmd

INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
"""


def run_cli(argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``gwlib <argv>`` with only the convert subcommand; (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="gwlib")
    sub = parser.add_subparsers(dest="command", required=True)
    convert_cmd.add_parser(sub)
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    try:
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                args = parser.parse_args(argv)
                code = args.func(args)
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.stdin = old_stdin
    return int(code or 0), out.getvalue(), err.getvalue()


def _write(tmp_path, text: str, name: str = "in.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_yaml_on_stdout_report_on_stderr(tmp_path):
    code, out, err = run_cli(["convert", _write(tmp_path, INGRESS)])
    assert code == 0
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [d["kind"] for d in docs] == ["Gateway", "HTTPRoute"]
    assert "info: Gateway shop/nginx" in err and err.rstrip().splitlines()[-1].startswith("summary:")
    assert "provider-guessed" not in err and "no provider given" in err   # the guess is said once


def test_provider_flag_and_usage_errors(tmp_path):
    path = _write(tmp_path, INGRESS)
    assert run_cli(["convert", "--provider", "traefik", path])[0] == 0
    code, out, err = run_cli(["convert", "--provider", "haproxy", path])
    assert code == 2 and out == "" and "invalid choice" in err
    assert run_cli(["convert"])[0] == 2
    assert run_cli(["convert", path, "extra"])[0] == 2


def test_stdin(tmp_path):
    code, out, _ = run_cli(["convert", "-"], stdin=INGRESS)
    assert code == 0 and "kind: HTTPRoute" in out
    code, out, err = run_cli(["convert", "-"], stdin="")
    assert code == 1 and out == "" and "stdin is empty" in err


@pytest.mark.parametrize("doc, where, message", [
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {}\n",
     "Deployment shop/web: kind:", "is not an Ingress"),
    (INGRESS.replace("pathType: Prefix", "pathType: Wildcard"),
     "Ingress shop/web: spec.rules[0].http.paths[0].pathType:", 'Unsupported value: "Wildcard"'),
    (INGRESS.replace("""        backend:
          service:
            name: web
            port:
              number: 80
""", "        backend: {}\n"),
     "Ingress shop/web: spec.rules[0].http.paths[0].backend:", "one backend (`service` or `resource`) must be "
                                                               "specified"),
    (INGRESS.replace("            name: web\n", ""),
     "Ingress shop/web: spec.rules[0].http.paths[0].backend.service.name:", "Required value"),
    (INGRESS.replace("networking.k8s.io/v1", "extensions/v1beta1"),
     "Ingress shop/web: apiVersion:", "removed in Kubernetes 1.22"),
    ("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {}\n",
     "HTTPRoute r: kind:", "is not an Ingress"),
    ("- just\n- a list\n", "-:", "not a mapping"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: only-a-service}\nspec: {ports: [{port: 80}]}\n",
     "-:", "no networking.k8s.io/v1 Ingress in the input"),
])
def test_bad_input_is_one_clear_line_and_exit_1(tmp_path, doc, where, message):
    path = _write(tmp_path, doc)
    code, out, err = run_cli(["convert", path])
    assert code == 1
    assert out == ""                                   # nothing emitted for the bad object
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines                      # one line, no traceback
    assert lines[0].startswith(path + ":0 ")
    assert where in lines[0] and message in lines[0]
    assert "Traceback" not in err


def test_bad_objects_do_not_stop_the_good_ones(tmp_path):
    bad = INGRESS.replace("name: web\n  namespace", "name: broken\n  namespace").replace(
        "pathType: Prefix", "pathType: Regex")
    other = INGRESS.replace("name: web\n  namespace", "name: blog\n  namespace").replace(
        "shop.example.com", "blog.example.com")
    path = _write(tmp_path, bad + "---\n" + other)
    code, out, err = run_cli(["convert", path])
    assert code == 1
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [d["metadata"]["name"] for d in docs] == ["nginx", "blog-blog-example-com"]
    problem_lines = [line for line in err.splitlines() if line.startswith(path)]
    assert len(problem_lines) == 1 and "Ingress shop/broken" in problem_lines[0]
    assert "broken" not in out


def test_missing_file_and_folder_input(tmp_path):
    code, out, err = run_cli(["convert", str(tmp_path / "nope.yaml")])
    assert code == 1 and out == "" and "no such file" in err and len(err.strip().splitlines()) == 1
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "a.yaml").write_text(INGRESS)
    (folder / "b.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
                                   "spec: {ports: [{name: http, port: 8080}]}\n")
    code, out, err = run_cli(["convert", str(folder)])
    assert code == 0 and "kind: Gateway" in out


def test_yaml_syntax_error_is_one_line(tmp_path):
    path = _write(tmp_path, "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: [unclosed\n")
    code, out, err = run_cli(["convert", path])
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "YAML syntax error" in err


def test_report_errors_are_not_input_errors(tmp_path):
    text = INGRESS.replace("spec:\n  ingressClassName",
                           "  annotations:\n    nginx.ingress.kubernetes.io/auth-url: http://auth/check\n"
                           "spec:\n  ingressClassName")
    code, out, err = run_cli(["convert", "--provider", "ingress-nginx", _write(tmp_path, text)])
    assert code == 0 and "kind: HTTPRoute" in out
    assert "error: Ingress shop/web: nginx.ingress.kubernetes.io/auth-url: " in err
