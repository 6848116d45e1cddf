"""Validation problems: one line each, naming file, object and field path."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one document.

    ``path`` is the field path in kubectl's style (``spec.rules[0].matches[1].path.value``),
    empty when the problem is with the document as a whole (YAML syntax, not a mapping).
    """

    file: str            # the file it came from, or "<string>" / "<object>"
    doc: int             # 0-based index of the YAML document in that file
    kind: str            # "" when unknown
    namespace: str       # "" when cluster-scoped or unknown
    name: str            # "" when unknown
    path: str
    message: str

    @property
    def object(self) -> str:
        ref = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {ref}".strip() if (self.kind or ref) else "-"

    def line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.doc} {self.object}: {where}{self.message}"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.line()
