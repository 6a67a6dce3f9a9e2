"""The chaos suite's pure parts: the proxy's timing decisions, verdicts and exit status, scenario
selection and the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import build_parser
from bridge.tools.chaos import scenarios as S
from bridge.tools.chaos.accounting import Accounts
from bridge.tools.chaos.corpus import CORPUS, v1_corpus
from bridge.tools.chaos.proxy import due_time, transmit_time
from bridge.tools.chaos.report import Result, Verdict, exit_code, markdown, table
from bridge.tools.chaos.rig import ProcessRecord, count_error_lines, count_tracebacks, log_events
from bridge.tools.chaos.runner import main


def test_a_chunk_is_due_after_its_latency_and_never_before_an_earlier_one() -> None:
    """Jitter may not reorder: a chunk with a small draw waits for the one before it."""
    first = due_time(10.0, 0.1, 0.05, 0.0)
    assert first == pytest.approx(10.15)
    second = due_time(10.01, 0.1, 0.0, first)
    assert second == first
    assert due_time(11.0, 0.0, 0.0, first) == 11.0


def test_transmit_time_follows_the_bandwidth_and_is_zero_when_unlimited() -> None:
    """1 MB over 1 MB/s takes a second; no limit takes no time."""
    assert transmit_time(1_000_000, 1_000_000.0) == pytest.approx(1.0)
    assert transmit_time(1_000_000, None) == 0.0
    assert transmit_time(10, 0) == 0.0


def clean() -> Accounts:
    return Accounts(inputs=3, outcomes=3)


def result(accounts: Accounts | None, known: str | None = None, **kw: object) -> Result:
    return Result("s", "v0", "proves", 1.0, accounts, known_defect=known, **kw)  # type: ignore[arg-type]


def test_verdicts_follow_accounting_processes_and_checks() -> None:
    """Loss, a bad exit, a traceback or a failed check each fail a scenario."""
    assert result(clean()).verdict is Verdict.PASS
    assert result(Accounts(inputs=3, outcomes=2, lost=1)).verdict is Verdict.FAIL
    assert result(None).verdict is Verdict.FAIL
    bad_exit = ProcessRecord("bridge-1", (0,), exit_code=1)
    assert result(clean(), processes=[bad_exit]).verdict is Verdict.FAIL
    killed = ProcessRecord("bridge-2", (-9,), exit_code=-9)
    assert result(clean(), processes=[killed]).verdict is Verdict.PASS
    traced = ProcessRecord("bridge-1", (0,), exit_code=0, tracebacks=1)
    assert result(clean(), processes=[traced]).verdict is Verdict.FAIL
    assert result(clean(), problems=["two assignments"]).verdict is Verdict.FAIL


def test_a_known_defect_is_expected_to_fail_and_its_pass_is_news() -> None:
    """A failing known defect exits 0 (xfail); one that passes exits 1 (XPASS: move it to the default)."""
    failing = result(Accounts(inputs=1, lost=1), known="issue 9")
    passing = result(clean(), known="issue 9")
    assert failing.verdict is Verdict.XFAIL
    assert passing.verdict is Verdict.XPASS
    assert exit_code([result(clean()), failing]) == 0
    assert exit_code([passing]) == 1
    assert exit_code([result(clean()), result(Accounts(inputs=1, lost=1))]) == 1


def test_the_default_set_holds_the_fixed_defects_and_leaves_out_known_ones() -> None:
    """CI's default run has no known-defect scenario and includes the regressions of the two fixed
    stuck-partition defects; --known-defects runs only scenarios marked as such (none today)."""
    default = S.select([], known_defects=False)
    known = S.select([], known_defects=True)
    assert default and all(s.known_defect is None for s in default)
    assert {"oversize-outcome", "duplicate-payload-ids"} <= {s.name for s in default}
    assert known == []
    assert [s.id for s in S.select(["poison/v0", "soak"], known_defects=False)] == [
        "poison/v0",
        "soak/v0",
        "soak/v1",
    ]
    with pytest.raises(KeyError, match="nope"):
        S.select(["nope"], known_defects=False)


def test_every_scenario_has_a_unique_id_a_budget_and_says_what_it_proves() -> None:
    """Scenario ids are name/api; each is bounded in time."""
    ids = [s.id for s in S.SCENARIOS]
    assert len(ids) == len(set(ids))
    for s in S.SCENARIOS:
        assert s.api in S.APIS
        assert s.proves
        assert 0 < s.budget_s(S.Params()) < 600


def test_the_table_has_a_row_per_scenario_with_the_figures() -> None:
    """inputs, outcomes, lost, duplicates and order violations appear in the table and in Markdown."""
    acc = Accounts(inputs=120, outcomes=119, lost=1, duplicates_below_commit=4, order_violations=2)
    text = table([result(acc, peak_rss_mb=61.4)])
    assert "120" in text and "119" in text and "4/0" in text and "61" in text and "FAIL" in text
    md = markdown([result(acc)])
    assert md.splitlines()[0].startswith("| scenario |")
    assert md.count("\n") == 2


def test_the_corpus_has_every_record_once_each_with_a_code() -> None:
    """The shared malformed corpus keeps its 32 records (the 30 of the first build, the empty WAV and the
    over-long envelope payload_id), each named once and each with a code."""
    assert len(CORPUS) == 32
    assert len({name for name, *_ in CORPUS}) == len(CORPUS)
    assert all(code for *_, code in CORPUS)


def test_the_command_line_takes_scenarios_the_known_defect_flag_and_durations() -> None:
    """``hume-bridge chaos --scenario A --scenario B --known-defects --soak-s 600 --json P``."""
    argv = ["chaos", "--scenario", "soak", "--scenario", "poison", "--known-defects", "--soak-s", "600"]
    args = build_parser([*argv, "--json", "out.json"]).parse_args([*argv, "--json", "out.json"])
    assert args.scenario == ["soak", "poison"]
    assert args.known_defects
    assert args.soak_s == 600.0
    assert args.json == "out.json"
    assert args.memory_mb == S.Params().memory_mb


def test_an_unknown_scenario_is_refused_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt scenario name fails before anything starts and points to --list."""
    args = build_parser(["chaos"]).parse_args(["chaos", "--scenario", "sok"])
    assert main(args) == 2
    assert "sok" in capsys.readouterr().err


def test_process_logs_are_read_for_tracebacks_events_and_error_lines(tmp_path: Path) -> None:
    """A traceback at the start of a line counts (one inside a JSON string does not); events by name."""
    log = tmp_path / "bridge.log"
    log.write_text(
        '{"event":"partitions_assigned","level":"info"}\n'
        '{"event":"library_log","level":"error","message":"x"}\n'
        '{"event":"crash","exception":"Traceback (most recent call last):\\n  ..."}\n'
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1\n'
        "RuntimeError: boom\n"
        '{"event":"partitions_assigned","level":"info"}\n'
    )
    assert count_tracebacks(log) == 1
    assert log_events(log, "partitions_assigned") == 2
    assert log_events(log, "partitions_revoked") == 0
    assert count_error_lines(log) == 1
    assert count_tracebacks(tmp_path / "missing.log") == 0


def test_the_v1_variants_are_listed_and_the_v1_only_ones_for_v1_alone() -> None:
    """The default set runs the v1 variants beside v0's; server_shutdown is v1 only; the table shows v1's
    settled records as measured+silent+errored."""
    ids = {s.id for s in S.select([], known_defects=False)}
    for name in ("emulator-restart", "hume-blackhole", "group-2-kill9", "memory"):
        assert {f"{name}/v0", f"{name}/v1"} <= ids
    assert "server-shutdown/v1" in ids and "server-shutdown/v0" not in ids
    assert "poison/v1" in ids
    assert [s.id for s in S.select(["server-shutdown"], known_defects=False)] == ["server-shutdown/v1"]
    assert all(s.api == "v0" for s in S.select([], known_defects=False, apis=("v0",)))
    for name in ("broker-freeze-short", "rolling-restart", "soak"):
        assert f"{name}/v1" in ids
    extended = {s.id for s in S.select([], known_defects=False, extended=True)} - ids
    assert extended == {"broker-freeze-long/v1", "hume-half-open/v1", "group-3-kill9/v1"}
    v1 = Result("s", "v1", "proves", 1.0, Accounts(inputs=5, outcomes=5, measured=2, silent=2, errored=1))
    assert "5 (2+2+1)" in table([v1])


def test_v1_calls_are_continuous_per_stream_and_end_with_end_of_stream() -> None:
    """Each stream's offsets step by 250 ms without gap; speech in the middle of every two seconds; the
    end adds a second of silence closed by hume-end-of-stream."""
    calls = S.Calls(2)
    records = [calls(i) for i in range(16)] + calls.end()
    for key in calls.keys:
        mine = [r for r in records if r[0] == key]
        offsets = [int(dict(h)["hume-stream-offset-ms"]) for _, _, h in mine]
        assert offsets == [250 * n for n in range(len(mine))]
        assert [dict(h).get("hume-end-of-stream") for _, _, h in mine].count(b"true") == 1
        assert dict(mine[-1][2]).get("hume-end-of-stream") == b"true"
        speech = [v == S._SPEECH for _, v, _ in mine[:8]]
        assert speech == [False, False, True, True, True, True, False, False]


def test_the_v1_corpus_is_one_coded_record_per_fault() -> None:
    """Every v1 corpus entry has a content type, a precise code, and a distinct name."""
    corpus = v1_corpus()
    assert len({name for name, *_ in corpus}) == len(corpus) == 8
    assert all(headers.get("content-type") for _, _, headers, _ in corpus)
    assert {str(code) for *_, code in corpus} == {
        "AUDIO_DECODE_FAILED",
        "INVALID_MEDIA_PARAMETERS",
        "IMAGE_DECODE_FAILED",
        "IMAGE_TOO_LARGE",
        "EMPTY_VALUE",
    }
