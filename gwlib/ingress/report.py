"""The lost-in-translation report of an Ingress → Gateway API conversion.

Every annotation the converter sees ends up in exactly one of two places:

* :attr:`Report.converted` — carried over into Gateway API fields (one entry per annotation
  and object, with what it became);
* :attr:`Report.findings` — a :class:`Finding` saying what was lost, how badly and why.

Nothing disappears silently (ingress2gateway issue #257 is the cautionary tale). Findings
also cover what is not an annotation: an assumed ingress class, a named port that could not
be resolved, a wildcard host that now matches more names, a host whose unmatched paths now
fall through to another route.

Severities:

* ``error`` — requests will be treated differently and it matters (authentication, IP
  allow-lists and rate limits dropped; a backend that could not be converted);
* ``warning`` — behaviour changes in some cases (timeouts, cookies, wildcard depth, ...);
* ``info`` — an assumption or a detail worth knowing; nothing a client would notice.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SEVERITIES = ("error", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    """One thing that did not survive the conversion (or an assumption it made)."""

    severity: str        # "error" | "warning" | "info"
    object: str          # "Ingress ns/name" (or "Gateway ns/name" for Gateway-wide findings)
    annotation: str      # the annotation key, or "" when the finding is about a field
    message: str         # what was lost and why, with the way out when there is one
    code: str = ""       # a short stable identifier (e.g. "wildcard-depth") used by tests and equivalence

    def line(self) -> str:
        what = f"{self.annotation}: " if self.annotation else ""
        line = f"{self.severity}: {self.object}: {what}{self.message}"
        return line.replace("\r", "\\r").replace("\n", "\\n")   # one line per finding, always

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Converted:
    """One annotation (or field) carried over, and what it became."""

    object: str
    annotation: str
    into: str


@dataclass
class Report:
    """What a conversion carried over and what it could not."""

    provider: str = "ingress-nginx"
    findings: list[Finding] = field(default_factory=list)
    converted: list[Converted] = field(default_factory=list)

    # -- building ----------------------------------------------------------------------------

    def add(self, severity: str, obj: str, annotation: str, message: str, code: str = "") -> None:
        if severity not in _RANK:
            raise ValueError(f"unknown severity {severity!r}")
        f = Finding(severity, obj, annotation, message, code)
        if f not in self.findings:
            self.findings.append(f)

    def carried(self, obj: str, annotation: str, into: str) -> None:
        c = Converted(obj, annotation, into)
        if c not in self.converted:
            self.converted.append(c)

    # -- reading -----------------------------------------------------------------------------

    def sorted(self) -> list[Finding]:
        """Findings, most severe first, then by object, annotation and message."""
        return sorted(self.findings, key=lambda f: (_RANK[f.severity], f.object, f.annotation, f.message))

    def codes(self) -> set[str]:
        return {f.code for f in self.findings if f.code}

    def annotations(self) -> set[str]:
        """Every annotation key the report mentions (converted or not)."""
        return {f.annotation for f in self.findings if f.annotation} | {c.annotation for c in self.converted}

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def lines(self) -> list[str]:
        """The report as text lines (what ``gwlib convert`` prints on stderr)."""
        return [f.line() for f in self.sorted()]

    def text(self) -> str:
        out = self.lines()
        n = {s: self.count(s) for s in SEVERITIES}
        out.append(f"summary: {len(self.converted)} annotation(s) and field(s) converted; "
                   f"{n['error']} error(s), {n['warning']} warning(s), {n['info']} note(s)")
        return "\n".join(out) + "\n"

    def to_frame(self, converted: bool = False):
        """A pandas DataFrame: one row per finding (severity, object, annotation, message);
        with ``converted=True`` one row per converted annotation instead."""
        import pandas as pd

        if converted:
            return pd.DataFrame([asdict(c) for c in self.converted], columns=["object", "annotation", "into"])
        return pd.DataFrame([{k: v for k, v in f.to_dict().items() if k != "code"} for f in self.sorted()],
                            columns=["severity", "object", "annotation", "message"])

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p, cycle) -> None:  # IPython
        p.text(self.text().rstrip("\n"))
