"""The triage pane's words for a run without a failure: the phrase once, and what the summary adds."""

from __future__ import annotations

from types import SimpleNamespace

from gpudash.ui.widgets.triage_pane import triage_content


def text_for(summary: str) -> str:
    view = SimpleNamespace(triage=SimpleNamespace(cls="none", summary=summary, evidence=()))
    return triage_content(view).plain


def test_no_failure_is_said_once():
    assert text_for("no failure in the current run").count("no failure") == 1


def test_an_earlier_failure_the_run_recovered_from_is_still_shown():
    text = text_for("no failure in the current run; an earlier oom (line 42) was followed by a fresh "
                    "start that is progressing")
    assert text.count("no failure") == 1
    assert "an earlier oom (line 42) was followed by a fresh start" in text


def test_a_summary_in_other_words_is_kept_whole():
    assert "the log is empty" in text_for("the log is empty")
