"""The classified failure of one host: class, plain-language explanation, the evidence lines
from the run's own log with their line numbers, and the fixed remediation for that class.

Evidence lines are log text — from the box — and are rendered as plain content.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from gpudash.ui import viewinfo as vi
from gpudash.ui.text import MUTED, plain, plain_lines
from gpudash.ui.widgets.panel import Panel

MAX_EVIDENCE = 12
SUMMARY_MAX = 240  # a summary is one line of meaning; the evidence carries the rest
NO_FAILURE = "no failure in the current run"


def triage_content(view, width: int = 200) -> Content:
    t = vi.triage_info(view)
    if view is None or t is None:
        return Content.styled("no triage yet — the run's log has not been read", MUTED)
    if t.cls in ("", "none"):
        head = Content.assemble(("no failure", "bold $success"), " in the current run")
        # The classifier's summary starts with the same words; show only what it adds (an
        # earlier failure the run recovered from), not the phrase twice.
        rest = t.summary
        if rest.startswith(NO_FAILURE):
            rest = rest[len(NO_FAILURE):].lstrip("; ")
        if rest:
            head += Content("\n") + plain(rest, MUTED)
        return head
    cls_style = "bold reverse $error" if t.is_failure else "bold $success"
    lines: list[Content] = [
        Content.assemble((f" {t.cls} ", cls_style), "  ", (t.category or "", "$accent"),
                         ("  " if t.summary else ""), plain(t.summary, "bold", max_len=SUMMARY_MAX)),
    ]
    if t.explanation:
        lines += [Content(""), Content.styled("What happened", "bold $primary"), plain_lines(t.explanation)]
    if t.cause:
        lines += [Content.assemble(("cause: ", MUTED), plain(t.cause))]
    if t.evidence:
        lines += [Content(""), Content.styled("Evidence (the run's own log)", "bold $primary")]
        num_w = max(len(str(e.line_no)) for e in t.evidence[:MAX_EVIDENCE] if e.line_no is not None) \
            if any(e.line_no is not None for e in t.evidence) else 1
        for e in t.evidence[:MAX_EVIDENCE]:
            no = str(e.line_no) if e.line_no is not None else "?"
            lines.append(Content.assemble((no.rjust(num_w), "$accent"), (" │ ", MUTED),
                                          plain(e.text, max_len=max(40, width - num_w - 3))))
        if len(t.evidence) > MAX_EVIDENCE:
            lines.append(Content.styled(f"… {len(t.evidence) - MAX_EVIDENCE} more lines", MUTED))
    if t.remediation:
        lines += [Content(""), Content.styled("What to do", "bold $primary"), plain_lines(t.remediation)]
    return Content("\n").join(lines)


class TriagePane(Panel):
    TITLE = "Triage"

    DEFAULT_CSS = """
    TriagePane { height: auto; min-height: 4; }
    """

    get_content_height = Widget.get_content_height  # measured by Textual (wrapping / fixed)

    def render(self) -> Content:
        # explanations wrap; Textual measures the wrapped height itself (height: auto)
        return triage_content(self.view)
