"""Validation problems: one line each, naming file, object and field path."""
from __future__ import annotations

from dataclasses import asdict, dataclass

#: pydantic error types that stand for a wrong JSON type (the API server's
#: ``field.ErrorTypeTypeInvalid``, "must be of type ...").
TYPE_ERROR_TYPES = frozenset({
    "string_type", "int_type", "int_from_float", "int_parsing", "bool_type", "bool_parsing",
    "float_type", "dict_type", "model_type", "model_attributes_type", "list_type", "tuple_type",
    "set_type", "is_instance_of", "int_or_string_type"})

#: pydantic error types that match the API server's *blocking* schema errors
#: (apiextensions-apiserver ``hasBlockingErr``: wrong type, Required, Unsupported value,
#: Too long, Too many): after one of them the API server evaluates no CEL rule.
#: Pattern, minLength, minItems, minimum/maximum errors (``field.ErrorTypeInvalid``),
#: duplicates and failed CEL rules are not blocking.
BLOCKING_ERROR_TYPES = TYPE_ERROR_TYPES | {"missing", "literal_error", "enum", "too_long",
                                           "string_too_long"}


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
