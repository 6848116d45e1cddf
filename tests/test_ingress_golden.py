"""Golden tests for every example in data/ingress/: the converted YAML and the report are
exactly the committed files, every produced object passes validation, and the reference
router on the output agrees with the Ingress router on every stored sample request.

Regenerate the golden files after a deliberate change (then review the diff!):

    GWLIB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_ingress_golden.py -p no:nbval -o addopts=""
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml

import gwlib
from gwlib.ingress import convert, equivalence

DATA = Path(__file__).resolve().parent.parent / "data" / "ingress"
EXAMPLES = list(csv.DictReader(open(DATA / "examples.csv", newline="", encoding="utf-8")))
UPDATE = bool(os.environ.get("GWLIB_UPDATE_GOLDEN"))
IDS = [e["name"] for e in EXAMPLES]


def _golden(path: Path, text: str) -> None:
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with GWLIB_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs from the converter's output"


def _requests(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines() if line.strip()]


def test_at_least_fifteen_examples_with_both_providers():
    assert len(EXAMPLES) >= 15
    assert {e["provider"] for e in EXAMPLES} == {"ingress-nginx", "traefik"}
    for e in EXAMPLES:
        folder = DATA / e["name"]
        assert {"ingress.yaml", "requests.jsonl", "expected.yaml", "report.txt"} <= {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_golden_output_and_report(example):
    folder = DATA / example["name"]
    conv = convert(folder / "ingress.yaml", provider=example["provider"])
    assert conv.problems == [], [p.line() for p in conv.problems]
    _golden(folder / "expected.yaml", conv.yaml())
    _golden(folder / "report.txt", conv.report.text())


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_every_produced_object_is_valid(example):
    text = (DATA / example["name"] / "expected.yaml").read_text()
    assert gwlib.validate(text, channel="standard") == []
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert docs and all(d["apiVersion"].startswith("gateway.networking.k8s.io/") for d in docs)
    assert sum(1 for d in docs if d["kind"] == "Gateway") >= 1
    conv = convert(DATA / example["name"] / "ingress.yaml", provider=example["provider"])
    assert not any(f.code == "invalid-output" for f in conv.report.findings)


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_equivalence_on_sample_requests(example):
    folder = DATA / example["name"]
    reqs = _requests(folder)
    assert len(reqs) >= 4
    eq = equivalence(folder / "ingress.yaml", reqs, provider=example["provider"])
    assert len(eq.rows) == len(reqs)
    assert eq.ok, "\n".join(f"{r['request']}: ingress {r['ingress']} / gateway {r['gateway']}" for r in eq.unexplained)
    # most requests must agree outright; differences are the exception the report predicted
    assert sum(r["same"] for r in eq.rows) >= 0.6 * len(eq.rows)


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_derived_requests_are_equivalent_too(example):
    eq = equivalence(DATA / example["name"] / "ingress.yaml", provider=example["provider"])
    assert eq.rows and eq.ok, eq.summary()


def test_every_difference_in_the_examples_is_predicted_by_a_finding():
    explained = set()
    for e in EXAMPLES:
        folder = DATA / e["name"]
        eq = equivalence(folder / "ingress.yaml", _requests(folder), provider=e["provider"])
        for r in eq.differences:
            assert r["explained_by"] in eq.conversion.report.codes()
            explained.add(r["explained_by"])
    # the examples exercise the known differences between Ingress and Gateway API semantics
    assert {"wildcard-depth", "canary-cookie", "rewrite-capture-groups", "regex-mode-literal",
            "nginx-no-fallthrough", "https-default-certificate", "redirect-query", "redirect-method"} <= explained


def test_cli_output_equals_golden(capsys):
    try:
        from tests.test_ingress_cli import run_cli
    except ImportError:   # pytest's default import mode puts tests/ itself on sys.path
        from test_ingress_cli import run_cli

    e = EXAMPLES[0]
    code, out, err = run_cli(["convert", "--provider", e["provider"], str(DATA / e["name"] / "ingress.yaml")])
    assert code == 0
    assert out == (DATA / e["name"] / "expected.yaml").read_text()
    assert err == (DATA / e["name"] / "report.txt").read_text()
