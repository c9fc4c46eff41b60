"""Triage: classify the run's own log into a failure class with evidence, and fuse that with
live probes. No UI imports."""

from gpudash.triage.classes import CLASS_IDS, CLASSES, ClassInfo, info
from gpudash.triage.classifier import classify, classify_file
from gpudash.triage.result import Evidence, TriageResult

__all__ = ["CLASS_IDS", "CLASSES", "ClassInfo", "info", "classify", "classify_file", "Evidence",
           "TriageResult"]
