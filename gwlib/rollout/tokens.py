"""What the two small expression languages of rollouts share: a regex lexer loop and a
token cursor. ``expr`` (Argo Rollouts' success/failure conditions, expr-lang) and
``promql`` (the queries of AnalysisTemplates) keep their own token patterns, token values
and grammars; tokens are ``(kind, value, position)`` and the list ends with ``("end", None, n)``."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Token = tuple[str, Any, int]


def lex(text: str, pattern: re.Pattern, convert: Callable[[str, str], tuple[str, Any] | None],
        error: Callable[[int], Exception]) -> list[Token]:
    """Tokens of ``text`` by ``pattern`` (named groups): ``convert(kind, text)`` gives the
    token's kind and value, or None to skip it (whitespace, comments); ``error(position)``
    is raised where nothing matches."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = pattern.match(text, pos)
        if m is None:
            raise error(pos)
        tok = convert(m.lastgroup, m.group(m.lastgroup))
        if tok is not None:
            out.append((tok[0], tok[1], pos))
        pos = m.end()
    out.append(("end", None, len(text)))
    return out


class Cursor:
    """A position in a token list: ``peek`` looks ahead (the end token repeats), ``take``
    moves on."""

    def __init__(self, text: str, toks: list[Token]):
        self.text = text
        self.toks = toks
        self.i = 0

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok
