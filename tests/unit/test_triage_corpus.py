"""The corpus of real failure excerpts (tests/fixtures/triage_corpus/, one file per excerpt,
index.json gives the expected class and the public source it was taken from).

The bar is the product's: >= 95% of `class` right. Misses are listed in the assertion message so a
regression says which wordings broke.
"""

import json

import pytest

from gpudash.triage import CLASS_IDS, classify_file
from tests.conftest import FIXTURES

CORPUS = FIXTURES / "triage_corpus"
INDEX = json.loads((CORPUS / "index.json").read_text())


def test_corpus_index_is_well_formed():
    assert len(INDEX) >= 60
    files = {p.name for p in CORPUS.glob("*.log")}
    assert {e["file"] for e in INDEX} == files
    for e in INDEX:
        assert e["class"] in CLASS_IDS
        assert e["source"].startswith(("https://", "code-index:")), e
    # every failure class the product names is represented by real text
    assert {e["class"] for e in INDEX} >= set(CLASS_IDS) - {"completed"}


def test_corpus_accuracy_at_least_95_percent():
    misses = []
    for e in INDEX:
        r = classify_file(CORPUS / e["file"])
        if r.cls != e["class"]:
            misses.append(f"{e['file']}: expected {e['class']}, got {r.cls} ({r.summary[:100]})")
    accuracy = 1 - len(misses) / len(INDEX)
    assert accuracy >= 0.95, f"accuracy {accuracy:.1%}; misses:\n" + "\n".join(misses)


@pytest.mark.parametrize("entry", [e for e in INDEX if e["class"] not in ("none",)], ids=lambda e: e["file"])
def test_corpus_failures_have_evidence_from_the_excerpt(entry):
    r = classify_file(CORPUS / entry["file"])
    if r.cls != entry["class"] or r.cls == "unknown_error" and not r.evidence:
        pytest.skip("covered by the accuracy test")
    lines = (CORPUS / entry["file"]).read_text(encoding="utf-8").split("\n")
    key = r.evidence[0]
    assert 1 <= key.line_no <= len(lines)
    assert key.text.strip()[:40] in lines[key.line_no - 1].replace("\t", "    ")
