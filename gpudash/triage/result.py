"""What the classifier returns: a frozen verdict with its evidence, ready for the triage pane,
`gpudash triage --json`, events and `gpudash wait`.

Every string in here is already sanitised (gpudash.sanitize): evidence lines come from a remote log
and may have carried escape sequences, bidi overrides or Textual markup.
"""

from __future__ import annotations

from dataclasses import replace

from gpudash.frozen import frozen
from gpudash.triage.classes import info


@frozen
class Evidence:
    line_no: int  # 1-based, counted on `\n` like `grep -n` (a `\r` progress bar is one line)
    text: str  # sanitised

    def to_json(self) -> dict:
        return {"line": self.line_no, "text": self.text}


@frozen
class TriageResult:
    cls: str
    category: str
    summary: str  # one line
    explanation: str
    remediation: str
    evidence: tuple[Evidence, ...] = ()  # the key line first
    cause: str | None = None  # disk_full: "bytes" | "inodes" | "quota" | None (unknown)
    past: tuple["TriageResult", ...] = ()  # earlier failures this run has moved past
    diagnoses: tuple[str, ...] = ()  # notes from live probes (fusion), not failures themselves
    confirmed: bool = False  # a live probe agreed with (or decided) the class
    source: str = ""
    lines_read: int = 0
    truncated: bool = False  # only the tail of the log was read

    @property
    def is_failure(self) -> bool:
        return info(self.cls).is_failure

    @property
    def history(self) -> tuple["TriageResult", ...]:
        """Alias of :attr:`past` (failures followed by a fresh start that progresses)."""
        return self.past

    @property
    def key_line(self) -> Evidence | None:
        return self.evidence[0] if self.evidence else None

    def with_class(self, cls: str, summary: str | None = None, **changes) -> "TriageResult":
        """The same result re-labelled (fusion): explanation and remediation follow the class."""
        ci = info(cls)
        return replace(
            self, cls=ci.id, category=ci.category, explanation=ci.explanation,
            remediation=ci.remediation, summary=summary if summary is not None else self.summary,
            **changes,
        )

    def to_json(self) -> dict:
        out = {
            "class": self.cls,
            "category": self.category,
            "summary": self.summary,
            "explanation": self.explanation,
            "remediation": self.remediation,
            "evidence": [e.to_json() for e in self.evidence],
            "cause": self.cause,
            "confirmed": self.confirmed,
            "diagnoses": list(self.diagnoses),
            "past": [p.to_json() for p in self.past],
        }
        if self.source:
            out["source"] = self.source
        if self.truncated:
            out["truncated"] = True
        return out


def make_result(cls: str, summary: str, evidence=(), **kw) -> TriageResult:
    ci = info(cls)
    return TriageResult(
        cls=ci.id, category=ci.category, summary=summary, explanation=ci.explanation,
        remediation=ci.remediation, evidence=tuple(evidence), **kw,
    )

