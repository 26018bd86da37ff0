"""The number formats of SPEC §2 against counting models."""

from hypothesis import example, given
from hypothesis import strategies as st

from tests.model import clock_text, percent, runs
from vodwatch.formats import (
    format_duration,
    format_visit_radio,
    format_visit_time,
    seconds_to_ms,
)
from vodwatch.intervals import clamp, measure


@given(
    st.sets(st.integers(min_value=-50, max_value=1_200), max_size=300),
    st.one_of(st.none(), st.integers(min_value=0, max_value=1_000)),
)
def test_visit_radio_matches_counting(points, duration_ms):
    covered = measure(clamp(runs(points), 0, duration_ms or 0))
    assert format_visit_radio(covered, duration_ms) == percent(points, duration_ms)


@given(st.integers(min_value=0, max_value=100 * 3600 * 1000).map(lambda ms: ms // 997 * 997))
@example(90_187_000)
@example(86_399_999)
@example(86_400_000)
def test_visit_time_matches_counting(watch_ms):
    if watch_ms > 30 * 3600 * 1000:  # the counting model is slow; check the tail by parts
        hours, rest = divmod(watch_ms // 1000, 3600)
        assert format_visit_time(watch_ms).split(":")[0] == f"{hours:02d}"
        assert format_visit_time(rest * 1000).endswith(format_visit_time(watch_ms)[-5:])
    else:
        assert format_visit_time(watch_ms) == clock_text(watch_ms)


def test_floor_never_rounds_up_to_a_full_video():
    assert format_visit_radio(999, 1_000) == "99%"  # 99.9 %
    assert format_visit_radio(268_999, 269_000) == "99%"
    assert format_visit_radio(269_000, 269_000) == "100%"
    assert format_visit_radio(16_140, 269_000) == "6%"  # the seed's 6 %


def test_unknown_or_zero_duration_reads_zero():
    assert format_visit_radio(5_000, None) == "0%"
    assert format_visit_radio(5_000, 0) == "0%"


def test_coverage_past_the_duration_caps_at_100():
    assert format_visit_radio(2_000_000, 1_000) == "100%"


def test_hours_keep_growing_past_24():
    assert format_visit_time(90_187_000) == "25:03:07"
    assert format_visit_time(100 * 3600 * 1000) == "100:00:00"
    assert format_visit_time(60_999) == "00:01:00"  # floored, not rounded


def test_duration_and_seconds():
    assert format_duration(269_000) == "269"
    assert format_duration(None) == "0"
    assert seconds_to_ms(27.5) == 27_500
    assert seconds_to_ms(0.1) == 100
