"""Parsers for wrk2/wrk, fortio, k6, oha, hey and .hgrm: fixtures written in each tool's format."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gwlib.latency as L
from gwlib.latency.parsers import wrk_time_ms

FIX = Path(__file__).parent / "fixtures" / "latency"
ALL = sorted(p for p in FIX.rglob("*") if p.is_file())


def approx(x, rel=1e-6):
    return pytest.approx(x, rel=rel)


# -- detection and the common schema ----------------------------------------------------------

@pytest.mark.parametrize("name,tool", [
    ("wrk2_latency.txt", "wrk2"), ("wrk2_uncorrected_minutes.txt", "wrk2"), ("wrk_plain.txt", "wrk"),
    ("fortio.json", "fortio"), ("fortio_max_grpc.json", "fortio"), ("fortio.txt", "fortio"),
    ("cluster/fortio-mesh-200rps-run1.log", "fortio"), ("k6_handle_summary.json", "k6"),
    ("k6_summary_export.json", "k6"), ("oha.json", "oha"), ("oha_ansi.txt", "oha"), ("oha_units.txt", "oha"),
    ("hey.txt", "hey"), ("spectrum.hgrm", "hdrhistogram"),
])
def test_detects_the_tool(name, tool):
    r = L.load(FIX / name)
    assert r.tool == tool
    assert L.detect((FIX / name).read_text()) in (tool, "wrk2" if tool == "wrk2" else tool)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_fixture_gives_the_tidy_schema(path):
    r = L.load(path)
    df = r.to_frame()
    assert list(df.columns) == L.SCHEMA
    assert len(df) == len(r.percentiles) > 0
    assert df["latency_ms"].is_monotonic_increasing or r.tool in ("k6",)  # k6 p(N) keys may be unordered
    assert df["percentile"].between(0, 100).all()
    assert (df["source"] == str(path)).all()


def test_text_and_path_give_the_same_result():
    a = L.load(FIX / "wrk2_latency.txt")
    b = L.load((FIX / "wrk2_latency.txt").read_text())
    assert a.percentiles == b.percentiles and a.histogram == b.histogram and b.source is None
    c = L.load(str(FIX / "wrk2_latency.txt"))
    assert c.source == str(FIX / "wrk2_latency.txt")


def test_keyword_arguments_fill_in_metadata():
    r = L.load(FIX / "k6_handle_summary.json", target="http://echo", rate=200, run="3")
    assert (r.target, r.rate, r.run, r.mode) == ("http://echo", 200, "3", "open")
    df = L.frame([r, L.load(FIX / "hey.txt")])
    assert set(df["tool"]) == {"k6", "hey"}


def test_unknown_input_raises_parse_error():
    with pytest.raises(L.ParseError, match="could not tell which tool"):
        L.load("hello\nworld\n")
    with pytest.raises(L.ParseError, match="no such file"):
        L.load("results/missing-run.txt")
    with pytest.raises(ValueError, match="unknown tool"):
        L.load("x\n", tool="ab")


# -- wrk2 / wrk ---------------------------------------------------------------------------------

def test_wrk_time_units_m_is_minutes():
    assert wrk_time_ms("635.91us") == approx(0.63591)
    assert wrk_time_ms("21.61ms") == approx(21.61)
    assert wrk_time_ms("1.14s") == approx(1140)
    assert wrk_time_ms("4.40m") == approx(264000)   # Kinvolk's Istio p99 at 600 rps: 4.4 minutes
    with pytest.raises(ValueError):
        wrk_time_ms("3.2 parsecs")


def test_wrk2_summary_and_spectrum():
    r = L.load(FIX / "wrk2_latency.txt")
    assert r.percentiles[50] == approx(1.94) and r.percentiles[99.9] == approx(19.81)
    assert r.percentiles[100] == approx(41.38)
    assert (r.connections, r.requests, r.errors, r.duration_s) == (32, 12000, 7, 60.0)
    assert r.meta["socket_errors"] == {"connect": 0, "read": 2, "write": 0, "timeout": 1}
    assert r.meta["non_2xx_3xx"] == 4 and r.meta["threads"] == 2
    assert r.meta["calibration_ms"] == [1.912, 1.874]
    assert r.achieved_rate == approx(199.98) and r.mode == "open" and r.corrected is True
    assert r.meta["mean_ms"] == approx(2.21) and r.meta["max_ms"] == approx(41.38)
    h = r.histogram
    assert h.count == 12000
    # the spectrum's own points come back (to HdrHistogram precision)
    for p, v in [(50, 1.939), (90, 3.119), (99, 6.839), (99.9, 19.807), (100, 41.375)]:
        assert h.percentile(p) == pytest.approx(v, rel=2e-3)
    assert r.meta["spectrum_footer"]["Total count"] == 12000


def test_wrk2_uncorrected_section_and_minutes():
    r = L.load(FIX / "wrk2_uncorrected_minutes.txt")
    assert r.rate == 600                       # read from the command line in the log
    assert r.percentiles[99] == approx(60000)  # "1.00m"
    assert r.percentiles[50] == approx(29980)  # "29.98s"
    assert r.meta["uncorrected_percentiles"][50] == approx(101.37)
    assert r.meta["uncorrected_histogram"].count == 9274
    assert r.histogram.percentile(50) == pytest.approx(29982.719, rel=2e-3)


def test_wrk_plain_is_closed_loop():
    r = L.load(FIX / "wrk_plain.txt")
    assert r.tool == "wrk" and r.mode == "closed" and r.corrected is False and r.histogram is None
    assert r.percentiles == {50: approx(0.281), 75: approx(0.339), 90: approx(0.412), 99: approx(1.07),
                             100: approx(9.87)}


def test_wrk2_errors_name_the_line():
    text = (FIX / "wrk2_latency.txt").read_text().replace(" 90.000%    3.12ms", " 90.000%    3.12 furlongs")
    with pytest.raises(L.ParseError, match=r":11: wrk2: expected a percentile line"):
        L.load(text)
    lines = (FIX / "wrk2_latency.txt").read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if "0.700000" in ln)
    lines[k] = "       2.000     0.700000         8404         3.33"   # value goes down
    with pytest.raises(L.ParseError, match=rf":{k + 1}: wrk2: spectrum rows must not decrease"):
        L.load("\n".join(lines))
    bad_total = (FIX / "wrk2_latency.txt").read_text().replace("Total count    =        12000",
                                                               "Total count    =        12001")
    with pytest.raises(L.ParseError, match="Total count = 12001"):
        L.load(bad_total)


def test_hgrm_round_trip():
    h = L.Histogram.from_values([0.1, 0.2, 0.2, 0.3, 1.5, 7.0] * 50)
    r = L.load(h.to_hgrm(), tool="hdrhistogram")
    assert r.histogram.count == h.count
    for p in (50, 90, 99, 100):
        assert r.histogram.percentile(p) == pytest.approx(h.percentile(p), rel=2e-3)


# -- fortio -------------------------------------------------------------------------------------

def test_fortio_json_units():
    r = L.load(FIX / "fortio.json")
    assert r.percentiles[50] == approx(0.625)            # seconds -> ms
    assert r.percentiles[100] == approx(4.823)           # Max
    assert r.duration_s == approx(5.00075)               # ActualDuration is nanoseconds
    assert r.rate == 200.0 and isinstance(r.rate, float)  # RequestedQPS is a string
    assert r.requests == 1000 and r.errors == 2 and r.connections == 8
    assert r.meta["ret_codes"] == {"200": 998, "503": 2}
    assert r.histogram.count == 1000
    # fortio interpolates linearly inside buckets; the rebuilt histogram agrees closely
    assert r.histogram.percentile(50) == pytest.approx(0.625, rel=0.02)
    assert r.histogram.percentile(90) == pytest.approx(0.857, rel=0.02)


def test_fortio_max_qps_is_closed_loop():
    r = L.load(FIX / "fortio_max_grpc.json")
    assert r.rate is None and r.mode == "closed" and r.errors == 0 and r.target == "127.0.0.1:8079"


def test_fortio_json_inside_kubectl_logs():
    r = L.load(FIX / "cluster" / "fortio-mesh-200rps-run1.log")
    assert r.requests == 1000 and r.percentiles[99] == approx(2.0)


def test_fortio_text():
    r = L.load(FIX / "fortio.txt")
    assert r.percentiles[50] == approx(1.18182) and r.percentiles[100] == approx(2.631)
    assert (r.rate, r.connections, r.requests) == (8.0, 4, 40)
    assert r.histogram.count == 40


def test_fortio_errors_name_the_field_or_line():
    doc = json.loads((FIX / "fortio.json").read_text())
    doc["DurationHistogram"]["Data"][3]["Count"] = "many"
    with pytest.raises(L.ParseError, match=r"DurationHistogram\.Data\[3\]\.Count: expected a count"):
        L.load(json.dumps(doc), tool="fortio")
    doc = json.loads((FIX / "fortio.json").read_text())
    doc["DurationHistogram"]["Count"] = 999
    with pytest.raises(L.ParseError, match="add up to 1000, but Count is 999"):
        L.load(json.dumps(doc), tool="fortio")
    doc = json.loads((FIX / "fortio.json").read_text())
    doc["RequestedQPS"] = "fast"
    with pytest.raises(L.ParseError, match="RequestedQPS"):
        L.load(json.dumps(doc), tool="fortio")
    text = (FIX / "fortio.json").read_text().replace('"Count": 310}', '"Count": 310')
    with pytest.raises(L.ParseError, match=r"fortio.json|<text>:\d+: fortio: invalid JSON"):
        L.load(text, tool="fortio")


# -- k6 -----------------------------------------------------------------------------------------

def test_k6_handle_summary():
    r = L.load(FIX / "k6_handle_summary.json")
    assert r.percentiles == {50: approx(1.5527), 90: approx(2.7342), 95: approx(3.4107), 99: approx(7.9183),
                             99.9: approx(21.0772), 100: approx(48.211)}
    assert (r.requests, r.errors, r.connections) == (6000, 2, 50)
    assert r.duration_s == approx(30.012574) and r.achieved_rate == approx(199.91619)
    assert r.meta["thresholds_ok"] == {"p(95)<500": True, "p(99.9)<20": False}
    assert r.meta["format"] == "handleSummary" and r.meta["mean_ms"] == approx(1.8412)


def test_k6_legacy_summary_export_inverts_thresholds():
    r = L.load(FIX / "k6_summary_export.json")
    assert r.meta["format"] == "summary-export"
    assert r.percentiles[50] == approx(110.4711) and r.percentiles[100] == approx(1140.5521)
    # in --summary-export, true means the threshold FAILED
    assert r.meta["thresholds_ok"] == {"p(95)<500": True, "p(90)<150": False}
    assert (r.requests, r.errors, r.connections) == (1200, 5, 10)


def test_k6_errors():
    doc = json.loads((FIX / "k6_handle_summary.json").read_text())
    del doc["metrics"]["http_req_duration"]
    with pytest.raises(L.ParseError, match="no http_req_duration"):
        L.load(json.dumps(doc), tool="k6")
    doc = json.loads((FIX / "k6_handle_summary.json").read_text())
    doc["metrics"]["http_req_duration"]["values"]["p(99)"] = "slow"
    with pytest.raises(L.ParseError, match=r"metrics\.http_req_duration\.values\.p\(99\)"):
        L.load(json.dumps(doc), tool="k6")


# -- oha ----------------------------------------------------------------------------------------

def test_oha_json():
    r = L.load(FIX / "oha.json")
    assert r.percentiles[99.9] == approx(332.0) and r.percentiles[100] == approx(379.1)
    assert (r.requests, r.errors) == (2000, 2)
    assert r.meta["coarse_histogram"][0] == (approx(90.6), 1)


def test_oha_text_with_ansi_codes():
    raw = (FIX / "oha_ansi.txt").read_text()
    assert "\x1b[" in raw
    r = L.load(raw)
    assert r.percentiles[50] == approx(201.7) and r.percentiles[100] == approx(513.1)
    assert r.requests == 300000 and r.duration_s == approx(1905.42) and r.achieved_rate == approx(157.4456)
    assert r.meta["success_rate"] == approx(1.0) and len(r.meta["coarse_histogram"]) == 11


def test_oha_text_newer_units():
    r = L.load(FIX / "oha_units.txt")
    assert r.percentiles[50] == approx(0.9315) and r.percentiles[100] == approx(48.3319)
    assert r.duration_s == approx(10.0021)
    assert r.meta["status_codes"] == {"200": 19975, "503": 5}
    assert r.meta["error_distribution"] == {"connection closed before message completed": 15}
    assert r.errors == 20 and r.requests == 19995


def test_oha_text_error_names_the_line():
    text = (FIX / "oha_units.txt").read_text().replace("  50.00% in 0.9315 ms", "  50.00% in quick")
    n = text.splitlines().index("  50.00% in quick") + 1
    with pytest.raises(L.ParseError, match=rf"<text>:{n}: oha: expected a line like"):
        L.load(text)


# -- hey ----------------------------------------------------------------------------------------

def test_hey():
    r = L.load(FIX / "hey.txt")
    assert r.percentiles == {10: approx(1.2), 25: approx(2.1), 50: approx(3.8), 75: approx(6.1), 90: approx(9.2),
                             95: approx(12.1), 99: approx(24.7), 100: approx(61.2)}
    assert (r.requests, r.errors) == (2000, 2) and r.duration_s == approx(2.0154)
    text = (FIX / "hey.txt").read_text().replace("  [500]\t2 responses", "  [500]\ttwo responses")
    n = text.splitlines().index("  [500]\ttwo responses") + 1
    with pytest.raises(L.ParseError, match=rf"<text>:{n}: hey: expected a line like '\[200\] 1000 responses'"):
        L.load(text)


# -- property tests: bad input never raises anything but ParseError --------------------------

FIXTURE_TEXTS = [(p, p.read_text()) for p in ALL]


def _only_parse_errors(text: str, tool: str | None) -> None:
    try:
        r = L.load(text, tool=tool)
    except L.ParseError as exc:
        assert str(exc)
        return
    df = r.to_frame()
    assert df["latency_ms"].map(math.isfinite).all()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(FIXTURE_TEXTS))), st.floats(0, 1))
def test_truncated_fixtures(i, frac):
    _, text = FIXTURE_TEXTS[i]
    _only_parse_errors(text[: int(len(text) * frac)] + "\n", None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(FIXTURE_TEXTS))), st.integers(0, 10**6), st.text(min_size=1, max_size=8))
def test_mutated_fixtures(i, pos, junk):
    path, text = FIXTURE_TEXTS[i]
    pos = pos % len(text)
    mutated = text[:pos] + junk + text[pos + len(junk):]
    _only_parse_errors(mutated, L.load(path).tool if path.suffix != ".hgrm" else "hdrhistogram")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.sampled_from([None, *L.TOOLS]))
def test_random_text(text, tool):
    _only_parse_errors(text + "\n", tool)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(
                        st.sampled_from(["DurationHistogram", "Data", "Count", "Start", "End", "Percentiles",
                                         "Percentile", "Value", "metrics", "http_req_duration", "values", "med",
                                         "p(99)", "summary", "latencyPercentiles", "p50", "RequestedQPS", "Max",
                                         "slowest", "root_group", "RetCodes"]), c, max_size=5),
                    max_leaves=25),
       st.sampled_from(["fortio", "k6", "oha"]))
def test_random_json_documents(doc, tool):
    _only_parse_errors(json.dumps(doc), tool)
