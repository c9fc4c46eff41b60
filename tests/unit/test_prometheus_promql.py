"""PromQL text, API-answer parsing, host identity and assembly into typed samples (pure code).

The JSON answers here have the exact shape a real Prometheus 2.42 returned for the queries this
module sends (captured while building it; the integration tests check the real thing end to end).
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import ProbeError, Reason
from gpudash.sanitize import is_inert
from gpudash.sources.prom_data import assemble, assemble_history
from gpudash.sources.promql import (
    AGE_LABEL, HostMapping, RangeSeries, Series, go_duration, instant_query, parse_query,
    parse_range, parse_scrape_interval, promql_string, regex_literal, selector, strip_port,
)

NOW = 1_795_379_591.581


def dcgm(host: str, gpu: int, uuid: str, **extra) -> dict:
    return {"DCGM_FI_DRIVER_VERSION": "580.159.04", "Hostname": host, "UUID": uuid,
            "device": f"nvidia{gpu}", "gpu": str(gpu), "instance": f"{host}:9400",
            "job": "dcgm", "modelName": "NVIDIA H100 80GB HBM3",
            "pci_bus_id": f"00000000:{0x18 + gpu:02X}:00.0", **extra}


def answer(series: list[tuple[dict, str]], ages: list[tuple[dict, str]] = ()) -> bytes:
    result = [{"metric": m, "value": [NOW, v]} for m, v in series]
    result += [{"metric": {**m, AGE_LABEL: "1"}, "value": [NOW, a]} for m, a in ages]
    return json.dumps({"status": "success",
                       "data": {"resultType": "vector", "result": result}}).encode()


def metric(name: str, labels: dict) -> dict:
    return {"__name__": name, **labels}


# ----------------------------------------------------------------------------- query text


def test_one_query_carries_values_and_the_age_of_each_hosts_samples():
    q = instant_query("DCGM_FI_DEV_GPU_UTIL", "Hostname")
    assert q == ('DCGM_FI_DEV_GPU_UTIL or label_replace(max by (Hostname, instance) '
                 '(time() - timestamp(DCGM_FI_DEV_GPU_UTIL)), "gpudash_age", "1", "__name__", ".*")')
    # host_label = instance must not list the label twice
    assert "max by (instance)" in instant_query("node_memory_MemTotal_bytes", "instance")


def test_filesystem_selector_skips_tmpfs_like_types_unless_asked():
    skip = selector("node_filesystem_size_bytes")
    assert 'fstype!~"' in skip and "tmpfs" in skip and "overlay" not in skip
    only = selector("node_filesystem_size_bytes", ("ext4", "fuse.juicefs"))
    assert only == 'node_filesystem_size_bytes{fstype=~"ext4|fuse\\\\.juicefs"}'
    assert selector("DCGM_FI_DEV_GPU_UTIL", ("ext4",)) == "DCGM_FI_DEV_GPU_UTIL"


def test_promql_strings_cannot_be_broken_out_of():
    hostile = 'x"} or vector(1) or up{a="\\'
    lit = promql_string(hostile)
    assert lit.startswith('"') and lit.endswith('"')
    inner = lit[1:-1]
    # every quote inside is escaped: the literal ends only at its last character
    i = 0
    while i < len(inner):
        if inner[i] == "\\":
            i += 2
            continue
        assert inner[i] != '"'
        i += 1
    assert regex_literal("a.b(c)|d") == r"a\.b\(c\)\|d"


# ----------------------------------------------------------------------------- parsing


def test_parse_query_splits_values_from_age_series():
    body = answer([(metric("DCGM_FI_DEV_GPU_UTIL", dcgm("n1", 0, "GPU-a")), "97"),
                   (metric("DCGM_FI_DEV_GPU_UTIL", dcgm("n1", 1, "GPU-b")), "NaN")],
                  [({"Hostname": "n1", "instance": "n1:9400"}, "0.721")])
    values, ages = parse_query(body)
    assert [s.value for s in values] == [97.0, None]  # NaN is unavailable, never 0
    assert ages == {(("Hostname", "n1"), ("instance", "n1:9400")): 0.721}


def test_api_errors_are_typed_with_a_sanitised_message():
    err = parse_query(json.dumps({"status": "error", "errorType": "bad_data",
                                  "error": "parse error \x1b[2J at char 5"}).encode(), 400)
    assert isinstance(err, ProbeError) and err.reason is Reason.PROBE_ERROR
    assert "bad_data" in err.message and is_inert(err.message)
    timeout = parse_query(b'{"status":"error","errorType":"timeout","error":"query timed out"}', 503)
    assert timeout.reason is Reason.TIMEOUT
    assert parse_query(b"Unauthorized", 401).reason is Reason.AUTH_FAILED
    assert parse_query(b"<html>proxy error</html>", 502).reason is Reason.PROBE_ERROR
    matrix = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})
    assert isinstance(parse_query(matrix), ProbeError)


def test_parse_range_and_scrape_interval():
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": dcgm("n1", 0, "GPU-a"), "values": [[100.0, "1"], [101.0, "+Inf"], ["x", "2"]]},
    ]}})
    (s,) = parse_range(body)
    assert s.points == ((100.0, 1.0), (101.0, None))
    targets = json.dumps({"status": "success", "data": {"activeTargets": [
        {"scrapeInterval": "15s"}, {"scrapeInterval": "1m30s"}, {"scrapeInterval": "bogus"}, {}]}})
    assert parse_scrape_interval(targets) == 90.0
    jobs = json.dumps({"status": "success", "data": {"activeTargets": [
        {"scrapeInterval": "15s", "labels": {"job": "dcgm"}},
        {"scrapeInterval": "5m", "labels": {"job": "slow-inventory"}}]}})
    assert parse_scrape_interval(jobs, jobs={"dcgm"}) == 15.0
    assert parse_scrape_interval(jobs, jobs={"absent"}) == 300.0  # no match: all targets
    assert parse_scrape_interval(b"{}") is None


def test_go_durations():
    assert go_duration("15s") == 15.0
    assert go_duration("500ms") == 0.5
    assert go_duration("1h2m3s") == 3723.0
    for bad in ("", "15", "s", "1x", "1s junk", None, 15):
        assert go_duration(bad) is None


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                              lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                              max_leaves=30).map(json.dumps)),
       st.integers(min_value=0, max_value=599))
def test_parsers_never_raise(body, status):
    for fn in (parse_query, parse_range, parse_scrape_interval):
        fn(body, status)


@settings(deadline=None, max_examples=80)
@given(st.lists(st.tuples(
    st.dictionaries(st.sampled_from(["result", "resultType", "metric", "value", "values"]),
                    st.just(None)), st.integers())))
def test_shaped_but_wrong_answers_never_raise(items):
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"gpu": str(i)}, "value": [NOW, str(v)]} if i % 2 else d
        for i, (d, v) in enumerate(items)]}})
    parse_query(body)


# ----------------------------------------------------------------------------- host identity


def test_hosts_by_label_then_instance_without_port():
    m = HostMapping()
    assert m.host_of({"Hostname": "node-a17", "instance": "10.0.0.17:9400"}) == "node-a17"
    assert m.host_of({"instance": "node-a17:9100"}) == "node-a17"
    assert m.host_of({"instance": "[fe80::1]:9100"}) == "fe80::1"
    assert m.host_of({"job": "x"}) is None
    assert strip_port("fe80::1") == "fe80::1" and strip_port("host") == "host"


def test_label_map_renames_pod_names_and_ips():
    m = HostMapping("Hostname", {"trainer": "dcgm-exporter-x7k2p", "trainer-b": "10.0.0.9"})
    assert m.host_of({"Hostname": "dcgm-exporter-x7k2p", "instance": "10.0.0.5:9400"}) == "trainer"
    assert m.host_of({"instance": "10.0.0.9:9100"}) == "trainer-b"
    assert m.label_value("trainer") == "dcgm-exporter-x7k2p" and m.label_value("other") == "other"


def test_hostile_label_values_become_inert_host_names():
    name = HostMapping().host_of({"Hostname": "evil\x1b]52;c;aGk=\x07\u202ebox"})
    assert is_inert(name) and "evil" in name


@settings(deadline=None, max_examples=200)
@given(st.dictionaries(st.sampled_from(["Hostname", "instance", "gpu", "x"]), st.text(max_size=30)))
def test_host_of_never_raises(labels):
    out = HostMapping("Hostname", {"a": "b"}).host_of(labels)
    assert out is None or is_inert(out)


# ----------------------------------------------------------------------------- assembly


def _answers(raw: dict[str, tuple[list, list]]) -> dict:
    return {name: parse_query(answer(series, ages)) for name, (series, ages) in raw.items()}


def test_gpu_series_join_across_metrics_per_gpu():
    a = {"Hostname": "n1", "instance": "n1:9400"}
    g0, g1 = dcgm("n1", 0, "GPU-a"), dcgm("n1", 1, "GPU-b")
    # the Xid series of newer dcgm-exporters carry extra labels: the join must not depend on them
    xid1 = dict(g1, err_code="79", err_msg="GPU has fallen off the bus")
    answers = _answers({
        "DCGM_FI_DEV_GPU_UTIL": ([(metric("DCGM_FI_DEV_GPU_UTIL", g1), "100"),
                                  (metric("DCGM_FI_DEV_GPU_UTIL", g0), "23")], [(a, "1.5")]),
        "DCGM_FI_DEV_FB_USED": ([(metric("DCGM_FI_DEV_FB_USED", g0), "5687"),
                                 (metric("DCGM_FI_DEV_FB_USED", g1), "35029")], [(a, "4")]),
        "DCGM_FI_DEV_FB_FREE": ([(metric("DCGM_FI_DEV_FB_FREE", g0), "75872"),
                                 (metric("DCGM_FI_DEV_FB_FREE", g1), "46530")], [(a, "1")]),
        "DCGM_FI_DEV_GPU_TEMP": ([(metric("DCGM_FI_DEV_GPU_TEMP", g0), "37")], [(a, "1")]),
        # DCGM's "blank" sentinel for an unsupported field: unavailable, not 9.2e18 W
        "DCGM_FI_DEV_POWER_USAGE": ([(metric("DCGM_FI_DEV_POWER_USAGE", g0), "9.223372036854776e+18"),
                                     (metric("DCGM_FI_DEV_POWER_USAGE", g1), "625.12")], [(a, "1")]),
        "DCGM_FI_DEV_XID_ERRORS": ([(metric("DCGM_FI_DEV_XID_ERRORS", g0), "0"),
                                    (metric("DCGM_FI_DEV_XID_ERRORS", xid1), "79")], [(a, "1")]),
    })
    (host,) = assemble(answers, HostMapping(), NOW).values()
    assert host.name == "n1" and [g.index for g in host.gpus] == [0, 1]
    g0s, g1s = host.gpus
    assert (g0s.util_pct, g0s.mem_used_mib, g0s.mem_total_mib, g0s.temp_c) == (23.0, 5687.0, 81559.0, 37.0)
    assert g0s.power_w is None and g0s.sm_clock_mhz is None  # not asked / blank: None, never 0
    assert (g1s.util_pct, g1s.temp_c, g1s.power_w) == (100.0, None, 625.12)
    assert g1s.uuid == "GPU-b" and g1s.name == "NVIDIA H100 80GB HBM3" and g1s.bus_id == "00000000:19:00.0"
    assert host.xid_errors == ((1, 79),)
    assert host.gpu_at == NOW - 4.0  # the oldest sample of the family
    assert host.labels == {"job": "dcgm"}


def test_mig_instances_are_separate_gpus():
    base = dcgm("n1", 0, "GPU-a")
    mig3 = dict(base, GPU_I_ID="3", GPU_I_PROFILE="2g.20gb")
    mig5 = dict(base, GPU_I_ID="5", GPU_I_PROFILE="2g.20gb")
    answers = _answers({"DCGM_FI_DEV_GPU_UTIL": ([(metric("DCGM_FI_DEV_GPU_UTIL", mig5), "10"),
                                                  (metric("DCGM_FI_DEV_GPU_UTIL", mig3), "30")], [])})
    gpus = assemble(answers, HostMapping(), NOW)["n1"].gpus
    assert [(g.name.split("[")[1], g.util_pct) for g in gpus] == [("MIG 2g.20gb #3]", 30.0),
                                                                 ("MIG 2g.20gb #5]", 10.0)]


def test_disks_use_df_arithmetic_and_unknown_inode_tables():
    inst = {"instance": "n1:9100"}
    root = dict(inst, device="/dev/vda", fstype="ext4", mountpoint="/")
    btrfs = dict(inst, device="/dev/sdb", fstype="btrfs", mountpoint="/data")
    def fs(name, a, b):
        return (name, ([(metric(name, root), a), (metric(name, btrfs), b)], [(inst, "2")]))
    answers = _answers(dict([
        fs("node_filesystem_size_bytes", "1000", "500"),
        fs("node_filesystem_avail_bytes", "100", "250"),
        fs("node_filesystem_free_bytes", "150", "250"),  # 50 reserved for root on ext4
        fs("node_filesystem_files", "64", "0"),           # btrfs: no fixed inode table
        fs("node_filesystem_files_free", "16", "0"),
    ]))
    host = assemble(answers, HostMapping(), NOW)["n1"]
    d_root, d_data = host.disks
    assert (d_root.mount, d_root.size_bytes, d_root.used_bytes, d_root.avail_bytes) == ("/", 1000, 850, 100)
    assert round(d_root.bytes_pct, 3) == round(100 * 850 / 950, 3)  # df's Capacity
    assert (d_root.inodes_total, d_root.inodes_used, d_root.inodes_free) == (64, 48, 16)
    assert d_data.inodes_total is None and d_data.inodes_pct is None  # unknown, not 100% used
    assert host.disk_at == NOW - 2.0 and host.gpus == () and host.gpu_at is None


def test_memory_from_node_exporter():
    inst = {"instance": "n1:9100"}
    answers = _answers({
        "node_memory_MemTotal_bytes": ([(metric("node_memory_MemTotal_bytes", inst), "1000")], [(inst, "1")]),
        "node_memory_MemAvailable_bytes": ([(metric("node_memory_MemAvailable_bytes", inst), "250")], [(inst, "1")]),
        "node_vmstat_oom_kill": ([(metric("node_vmstat_oom_kill", inst), "3")], [(inst, "1")]),
    })
    mem = assemble(answers, HostMapping(), NOW)["n1"].memory
    assert (mem.source, mem.host_total_bytes, mem.host_available_bytes, mem.oom_kills) == \
        ("node_exporter", 1000, 250, 3)
    assert mem.used_pct == 75.0


def test_dcgm_and_node_series_of_one_box_meet_under_one_host():
    answers = _answers({
        "DCGM_FI_DEV_GPU_UTIL": ([(metric("DCGM_FI_DEV_GPU_UTIL", dcgm("node-7", 0, "GPU-a")), "50")], []),
        "node_memory_MemTotal_bytes": ([(metric("node_memory_MemTotal_bytes", {"instance": "node-7:9100"}), "8")], []),
    })
    out = assemble(answers, HostMapping(), NOW)
    assert list(out) == ["node-7"] and out["node-7"].gpus and out["node-7"].memory


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(
    st.sampled_from(["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                     "node_filesystem_size_bytes", "node_filesystem_files",
                     "node_filesystem_files_free", "node_memory_MemTotal_bytes"]),
    st.dictionaries(st.sampled_from(["Hostname", "instance", "gpu", "UUID", "GPU_I_ID",
                                     "mountpoint", "device"]), st.text(max_size=12)),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))), max_size=20))
def test_assemble_never_raises(rows):
    answers: dict = {}
    for name, labels, value in rows:
        answers.setdefault(name, ((), {}))
        answers[name] = (answers[name][0] + (Series(labels, value),), {})
    for host in assemble(answers, HostMapping(), NOW).values():
        assert is_inert(host.name)
        for g in host.gpus:
            assert is_inert(g.name) and is_inert(g.uuid)


def test_history_lands_on_its_step_grid():
    g0 = dcgm("n1", 0, "GPU-a")
    util = (RangeSeries(g0, ((100.0, 10.0), (102.0, 30.0))),)
    used = (RangeSeries(g0, ((100.0, 20.0), (101.0, 40.0), (102.0, 60.0))),)
    free = (RangeSeries(g0, ((100.0, 80.0), (101.0, 60.0), (102.0, 40.0))),)
    hist = assemble_history(util, used, free, HostMapping(), 100.0, 1.0, 3)["n1"]
    assert hist.util[0] == (10.0, None, 30.0)  # a gap stays a gap
    assert hist.mem_pct[0] == (20.0, 40.0, 60.0)
