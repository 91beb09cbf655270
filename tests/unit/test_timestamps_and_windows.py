"""Timestamp formatting/parsing and the half-open created_window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from siro_assets.api_client import MS, RecordingsQuery, created_window, format_ts, parse_ts


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_format_ts_has_exactly_three_fraction_digits_and_z():
    assert format_ts(utc(2024, 6, 13, 4, 0, 0, 592000)) == "2024-06-13T04:00:00.592Z"
    assert format_ts(utc(2024, 6, 13)) == "2024-06-13T00:00:00.000Z"


def test_format_ts_truncates_sub_millisecond_digits():
    assert format_ts(utc(2024, 6, 13, 4, 0, 0, 592999)) == "2024-06-13T04:00:00.592Z"


def test_format_ts_converts_other_zones_to_utc():
    cest = timezone(timedelta(hours=2))
    assert format_ts(datetime(2024, 6, 13, 6, 0, 0, 1000, tzinfo=cest)) == "2024-06-13T04:00:00.001Z"


def test_format_ts_rejects_naive():
    with pytest.raises(ValueError, match="timezone-aware"):
        format_ts(datetime(2024, 6, 13))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2024-06-13T04:00:00.592Z", utc(2024, 6, 13, 4, 0, 0, 592000)),
        ("2024-06-13T06:00:00.592+02:00", utc(2024, 6, 13, 4, 0, 0, 592000)),
        ("2024-06-13T04:00:00Z", utc(2024, 6, 13, 4)),
    ],
)
def test_parse_ts(text, expected):
    parsed = parse_ts(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_parse_ts_rejects_zone_less_strings():
    with pytest.raises(ValueError):
        parse_ts("2024-06-13T04:00:00.592")


def test_format_parse_round_trip():
    text = "1999-12-31T23:59:59.999Z"
    assert format_ts(parse_ts(text)) == text
    assert MS == timedelta(milliseconds=1)


def test_created_window_for_a_day_has_exact_boundaries():
    day = date(2026, 1, 15)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    params = created_window(start, start + timedelta(days=1)).to_params()
    assert params["createdAt:gt"] == "2026-01-14T23:59:59.999Z"
    assert params["createdAt:lt"] == "2026-01-16T00:00:00.000Z"


def _api_matches(query: RecordingsQuery, created: datetime) -> bool:
    """The API's semantics: both createdAt bounds exclusive, compared at ms precision."""
    gt = parse_ts(format_ts(query.created_gt))
    lt = parse_ts(format_ts(query.created_lt))
    return gt < created < lt


def test_consecutive_windows_partition_time_without_gaps_or_overlap():
    midnight = utc(2026, 1, 16)
    day1 = created_window(midnight - timedelta(days=1), midnight)
    day2 = created_window(midnight, midnight + timedelta(days=1))
    for offset_ms in (-2, -1, 0, 1, 2):
        t = midnight + offset_ms * MS
        assert _api_matches(day1, t) + _api_matches(day2, t) == 1, t
    assert _api_matches(day2, midnight)
    assert not _api_matches(day1, midnight)
    assert _api_matches(day1, midnight - timedelta(days=1))


def test_created_window_with_sub_millisecond_bounds_stays_exact():
    start = utc(2026, 1, 16, 0, 0, 0, 500)  # 0.5 ms past midnight
    end = utc(2026, 1, 16, 0, 0, 0, 2500)
    q = created_window(start, end)
    # ms-precision createdAt values inside [start, end) are .001 and .002
    inside = [t for t in (utc(2026, 1, 16, 0, 0, 0, us) for us in (0, 1000, 2000, 3000)) if _api_matches(q, t)]
    assert inside == [utc(2026, 1, 16, 0, 0, 0, 1000), utc(2026, 1, 16, 0, 0, 0, 2000)]


def test_created_window_passes_other_options_through():
    q = created_window(utc(2026, 1, 1), utc(2026, 1, 2), show_crm_links=True, page_size=50)
    assert q.show_crm_links is True and q.page_size == 50
    assert q.created_gt == utc(2025, 12, 31, 23, 59, 59, 999000)
    assert q.created_lt == utc(2026, 1, 2)


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=-1)])
def test_created_window_rejects_empty_or_inverted(delta):
    start = utc(2026, 1, 1)
    with pytest.raises(ValueError, match="end > start"):
        created_window(start, start + delta)


def test_created_window_rejects_naive():
    with pytest.raises(ValueError, match="timezone-aware"):
        created_window(datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        created_window(utc(2026, 1, 1), datetime(2026, 1, 2))


def test_created_window_refuses_conflicting_bounds():
    with pytest.raises(TypeError):
        created_window(utc(2026, 1, 1), utc(2026, 1, 2), created_gt=utc(2026, 1, 1))


def test_query_rejects_naive_datetimes_and_bad_page_size():
    with pytest.raises(ValueError):
        RecordingsQuery(updated_gte=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        RecordingsQuery(page_size=0)
    with pytest.raises(ValueError):
        RecordingsQuery(page_size=True)


def test_query_is_frozen_and_replace_works():
    q = RecordingsQuery()
    with pytest.raises(Exception):
        q.page_size = 5  # type: ignore[misc]
    assert q.replace(page_size=5).page_size == 5
