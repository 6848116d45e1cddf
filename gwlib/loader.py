"""Reading manifests: files, folders, YAML strings and dicts → documents → typed resources.

Two steps, kept apart so that bad input never stops the rest of the input:

* :func:`read_documents` turns any source into :class:`Document` s — each one either a
  mapping or a :class:`~gwlib.problems.Problem` (unreadable file, YAML syntax error with its
  line, a document that is not a mapping). Documents are numbered per file from 0, empty
  documents included, so ``file:doc`` always points at the same place.
* :func:`parse_document` turns one mapping into a typed resource, or into problems.

YAML is read the way ``kubectl`` reads it, with two guards: duplicate keys are an error
(kubectl's strict decoding rejects them too), and timestamps stay strings
(``creationTimestamp: 2024-01-01T00:00:00Z`` must not become a Python datetime).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .problems import Problem

YAML_SUFFIXES = (".yaml", ".yml", ".json")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML loader: no timestamp conversion, duplicate keys rejected."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark) from None
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class Document:
    """One YAML document: its origin and either its data or the problem reading it."""

    file: str
    index: int
    data: Any = None
    problem: Problem | None = None


_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$")


def _split_yaml(text: str) -> list[tuple[int, str]]:
    """Split a YAML stream at ``---`` lines: [(first line number (0-based), chunk)].

    Splitting by hand (instead of ``safe_load_all``) lets one broken document be reported
    while the documents after it are still read.
    """
    chunks: list[tuple[int, str]] = []
    start, buf = 0, []
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        if _SEPARATOR.match(line.rstrip("\r\n")):
            if buf or n > 0:
                chunks.append((start, "".join(buf)))
            start, buf = n + 1, []
            rest = line.rstrip("\r\n")[3:].strip()
            if rest and not rest.startswith("#"):
                buf.append(rest + "\n")  # "--- {a: 1}": content on the separator line
        else:
            buf.append(line)
    chunks.append((start, "".join(buf)))
    # A stream that starts with '---' yields an empty chunk before it; drop only that one.
    if len(chunks) > 1 and lines and _SEPARATOR.match(lines[0].rstrip("\r\n")) and not chunks[0][1].strip():
        chunks = chunks[1:]
    return chunks


def _yaml_error_message(exc: yaml.YAMLError, line_offset: int) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    what = f"{context} {problem}" if context else problem
    if mark is not None:
        return f"YAML syntax error at line {mark.line + 1 + line_offset}, column {mark.column + 1}: {what}"
    return f"YAML syntax error: {what}"


def parse_yaml_text(text: str, file: str) -> list[Document]:
    """Parse a (multi-document) YAML string into documents; never raises for bad YAML."""
    docs: list[Document] = []
    for index, (offset, chunk) in enumerate(_split_yaml(text)):
        try:
            data = yaml.load(chunk, Loader=_Loader)  # noqa: S506 - a safe loader subclass
        except yaml.YAMLError as exc:
            docs.append(Document(file, index, problem=Problem(
                file, index, "", "", "", "", _yaml_error_message(exc, offset))))
            continue
        except (ValueError, OverflowError, RecursionError) as exc:  # e.g. absurd numbers
            docs.append(Document(file, index, problem=Problem(
                file, index, "", "", "", "", f"cannot read YAML: {exc}")))
            continue
        if data is None:
            continue
        docs.extend(_expand(file, index, data))
    return docs


def _expand(file: str, index: int, data: Any) -> list[Document]:
    """A ``kind: List`` (what ``kubectl get -o yaml`` prints) becomes its items."""
    if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list) \
            and str(data.get("apiVersion", "v1")) == "v1":
        return [d for item in data["items"] for d in _expand(file, index, item)]
    if not isinstance(data, dict):
        what = type(data).__name__ if not isinstance(data, list) else "a list"
        return [Document(file, index, problem=Problem(
            file, index, "", "", "", "",
            f"document is {what}, not a mapping (every Kubernetes object is a mapping with apiVersion and kind)"))]
    return [Document(file, index, data=data)]


def _read_file(path: Path) -> list[Document]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [Document(file, 0, problem=Problem(file, 0, "", "", "", "", "cannot read file: not UTF-8 text"))]
    except OSError as exc:
        return [Document(file, 0, problem=Problem(
            file, 0, "", "", "", "", f"cannot read file: {exc.strerror or exc}"))]
    return parse_yaml_text(text, file)


def _files_in(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root, f) for f in sorted(files)
                     if f.endswith(YAML_SUFFIXES) and not f.startswith("."))
    return found


def _looks_like_yaml_text(s: str) -> bool:
    return "\n" in s or (":" in s and not os.path.exists(s) and not s.endswith(YAML_SUFFIXES))


def read_documents(source: Any) -> list[Document]:
    """Read any source into documents.

    ``source`` may be a path (file or folder, read recursively in name order; ``.yaml``,
    ``.yml`` and ``.json`` files), a YAML string (multi-document), a mapping, a gwlib
    resource, or an iterable of any of these.
    """
    if hasattr(source, "to_dict") and hasattr(source, "source"):  # a gwlib resource
        file, index = source.source or ("<object>", 0)
        return [Document(file, index, data=source.to_dict())]
    if isinstance(source, Mapping):
        return _expand("<object>", 0, dict(source))
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not _looks_like_yaml_text(source)):
        path = Path(source)
        try:
            if path.is_dir():
                return [d for f in _files_in(path) for d in _read_file(f)]
            exists = path.exists()
        except OSError as exc:  # e.g. a name longer than the file system allows
            return [Document(str(path), 0, problem=Problem(
                str(path), 0, "", "", "", "", f"cannot read file: {exc.strerror or exc}"))]
        if not exists:
            return [Document(str(path), 0, problem=Problem(
                str(path), 0, "", "", "", "", "cannot read file: no such file or directory"))]
        return _read_file(path)
    if isinstance(source, str):
        return parse_yaml_text(source, "<string>")
    if isinstance(source, bytes):
        return parse_yaml_text(source.decode("utf-8", errors="replace"), "<string>")
    if isinstance(source, Iterable):
        docs: list[Document] = []
        for i, item in enumerate(source):
            sub = read_documents(item)
            if isinstance(item, Mapping):  # number loose dicts by their position in the list
                sub = [Document(d.file, i, d.data, d.problem) for d in sub]
            docs.extend(sub)
        return docs
    if source is None:
        return []
    return _expand("<object>", 0, source)  # a number, a bool, ...: "not a mapping"


def identity(data: Any) -> tuple[str, str, str]:
    """(kind, namespace, name) of a raw document, as far as it can be read."""
    if not isinstance(data, dict):
        return "", "", ""
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    kind = data.get("kind") if isinstance(data.get("kind"), str) else ""
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    return kind, ns, name
