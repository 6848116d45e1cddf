"""Reading documents: every source shape, and bad input as problems, never exceptions."""
from __future__ import annotations

import pytest

from gwlib.loader import parse_yaml_text, read_documents

TWO_DOCS = """\
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: v1
kind: Namespace
metadata: {name: b}
"""


def test_multi_document_string_keeps_order_and_indexes():
    docs = read_documents(TWO_DOCS)
    assert [(d.file, d.index, d.data["metadata"]["name"]) for d in docs] == [
        ("<string>", 0, "a"), ("<string>", 1, "b")]


def test_leading_separator_and_empty_documents_keep_positions():
    docs = parse_yaml_text("---\nkind: A\n---\n---\nkind: B\n", "f.yaml")
    assert [(d.index, d.data["kind"]) for d in docs] == [(0, "A"), (2, "B")]


def test_syntax_error_names_the_line_in_the_file_and_later_documents_still_load():
    text = "kind: A\n---\nkind: B\n  bad: [\n---\nkind: C\n"
    docs = parse_yaml_text(text, "f.yaml")
    assert docs[0].data == {"kind": "A"}
    assert docs[1].problem is not None and "line 4" in docs[1].problem.message
    assert docs[2].data == {"kind": "C"}


def test_duplicate_keys_are_an_error_like_kubectl_strict_decoding():
    docs = parse_yaml_text("kind: A\nkind: B\n", "f.yaml")
    assert docs[0].problem is not None and "duplicate key 'kind'" in docs[0].problem.message


def test_timestamps_stay_strings():
    docs = parse_yaml_text("metadata:\n  creationTimestamp: 2024-01-02T03:04:05Z\n", "f.yaml")
    assert docs[0].data["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"


@pytest.mark.parametrize("text,word", [("- a\n- b\n", "a list"), ("42\n", "int"), ("just text\n", "str")])
def test_a_document_that_is_not_a_mapping_is_a_problem(text, word):
    (doc,) = parse_yaml_text(text, "f.yaml")
    assert doc.problem is not None and word in doc.problem.message


def test_kind_list_is_expanded():
    text = "apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n"
    assert [d.data["kind"] for d in parse_yaml_text(text, "f")] == ["A", "B"]


def test_folder_is_read_recursively_in_name_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.yaml").write_text("kind: B\n")
    (tmp_path / "1.yml").write_text("kind: A\n")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.yaml").write_text("kind: H\n")
    docs = read_documents(tmp_path)
    assert [d.data["kind"] for d in docs] == ["A", "B"]
    assert docs[1].file.endswith("2.yaml")


def test_missing_file_and_binary_file_are_problems(tmp_path):
    (missing,) = read_documents(tmp_path / "nope.yaml")
    assert "no such file" in missing.problem.message
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(b"\xff\xfe\x00binary")
    (binary,) = read_documents(blob)
    assert "not UTF-8" in binary.problem.message


def test_dicts_and_lists_of_sources():
    docs = read_documents([{"kind": "A"}, {"kind": "B"}, "kind: C\n"])
    assert [(d.data["kind"], d.index) for d in docs] == [("A", 0), ("B", 1), ("C", 0)]


def test_a_name_too_long_for_the_file_system_is_a_problem_not_an_exception():
    # found by the property test: text without a newline or colon is read as a path
    (doc,) = read_documents("0" * 300)
    assert doc.problem is not None and doc.problem.message.startswith("cannot read file:")
