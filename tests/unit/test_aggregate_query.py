"""The overview's search language and arrangement (filter → sort → group) on views built by the
real health engine (the same builder as test_prometheus_aggregate)."""

from __future__ import annotations

import pytest

from gpudash.model import State
from gpudash.sources.aggregate import (
    Query, arrange, fleet_counts, fleet_summary, label_keys, parse_query, query_views,
)
from tests.unit.test_prometheus_aggregate import view


@pytest.fixture
def fleet():
    return [
        view("b-ok", [90, 95], labels={"rack": "r1", "pool": "train"}),
        view("a-hot", [99, 99], [90, 50], labels={"rack": "r2", "pool": "train"}),
        view("c-down", [10], link_ok=False, labels={"rack": "r10"}),
        view("d-idle", [0, 0], labels={}),
    ]


def names(views):
    return [v.name for v in views]


def test_parse_query_tokens():
    q = parse_query("gpu  Rack=R1 state:warn is:CRIT is:problem")
    assert q == Query(words=("gpu",), labels=(("rack", "r1"),),
                      states=frozenset({State.WARN, State.CRIT}), problems=True)
    assert parse_query("").empty and not parse_query("x").empty
    assert parse_query("is:blue").words == ("is:blue",)  # not a state: a literal word
    assert parse_query("=x key=").words == ("=x", "key=")


def test_label_tokens_match_exactly_and_words_match_names_and_values(fleet):
    assert names(query_views(fleet, "rack=r1")) == ["b-ok"]  # not r10
    assert names(query_views(fleet, "RACK=R10")) == ["c-down"]
    assert names(query_views(fleet, "r1")) == ["b-ok", "c-down"]  # a word: substring
    assert names(query_views(fleet, "pool=train hot")) == ["a-hot"]  # every token must match
    assert names(query_views(fleet, "state:warn is:unknown")) == ["a-hot", "c-down"]  # OR'ed
    assert names(query_views(fleet, "is:problem")) == ["a-hot", "c-down"]
    assert names(query_views(fleet, "is:blue")) == []
    assert names(query_views(fleet, "", only_problems=True)) == ["a-hot", "c-down"]


def test_arrange_filters_sorts_then_groups(fleet):
    assert arrange(fleet) == [(None, ["b-ok", "a-hot", "c-down", "d-idle"])]
    assert arrange(fleet, sort="name") == [(None, ["a-hot", "b-ok", "c-down", "d-idle"])]
    assert arrange(fleet, sort="name", group="pool") == [
        ("train", ["a-hot", "b-ok"]), ("(none)", ["c-down", "d-idle"])]
    assert arrange(fleet, group="state", only_problems=True) == [
        ("WARN", ["a-hot"]), ("UNKNOWN", ["c-down"])]
    assert arrange(fleet, query="nothing-matches") == []


def test_label_keys_and_counts(fleet):
    assert label_keys(fleet) == ["pool", "rack"]
    c = fleet_counts(fleet)
    assert (c.hosts, c.gpus, c.head) == (4, 7, "4 hosts, 7 GPUs")
    assert c.states == ((State.WARN, 1), (State.UNKNOWN, 1), (State.OK, 2))
    assert fleet_summary(fleet[:1]) == "1 host, 2 GPUs: 1 OK; util 92% avg"
