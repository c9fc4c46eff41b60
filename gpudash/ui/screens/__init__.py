"""Screens: overview, host detail, split, triage, help, teardown."""
