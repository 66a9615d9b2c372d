import pytest

from harness.durations import MAX_DURATION_S, MAX_RATE_PER_S, format_duration, parse_duration, parse_rate


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("2m", 120.0), ("1h30m", 5400.0), ("500ms", 0.5), (45, 45.0), (1.5, 1.5), ("7", 7.0),
    ("1m30s", 90.0), ("0s", 0.0),
])
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["-5s", -1, "5 parsecs", "m5", "", True, None, "1h-2m"])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_duration(bad)


@pytest.mark.parametrize(("text", "rate"), [("2/s", 2.0), ("120/m", 2.0), ("3600/h", 1.0), (0.5, 0.5), ("4", 4.0)])
def test_parse_rate(text: object, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["0/s", -1, "fast", "2/fortnight", False])
def test_parse_rate_rejects(bad: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_rate(bad)


def test_format_duration() -> None:
    assert format_duration(0.25) == "250ms"
    assert format_duration(90) == "90s"
    assert format_duration(180) == "3m"


# --- issue 14: every duration and rate is a finite number the lab can honour ---------------------------------

@pytest.mark.parametrize(("bad", "says"), [
    (float("nan"), "must be a finite number"), (float("inf"), "must be a finite number"),
    ("nan", "expected a duration"), ("inf", "expected a duration"), (".inf", "expected a duration"),
    ("1_000", "expected a duration"), (1e308, "at most 7 days"), ("1e308", "at most 7 days"),
    ("1" * 400 + "h", "at most 7 days"), (10**400, "at most 7 days"), ("168h1s", "at most 7 days"),
    (MAX_DURATION_S + 0.5, "at most 7 days"),
])
def test_parse_duration_refuses_what_the_lab_cannot_honour(bad: object, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        parse_duration(bad)
    assert len(str(info.value)) < 120  # a megabyte of digits is not echoed back


def test_the_longest_duration_is_seven_days() -> None:
    assert parse_duration("168h") == parse_duration(604800) == MAX_DURATION_S == 7 * 86400


@pytest.mark.parametrize(("bad", "says"), [
    (float("nan"), "must be a finite number"), (float("inf"), "must be a finite number"), ("nan", "expected a rate"),
    ("nan/s", "expected a rate"), ("100000/s", "at most 1000/s"), (1001, "at most 1000/s"), (10**400, "at most 1000/s"),
    ("1e308", "at most 1000/s"),
])
def test_parse_rate_refuses_what_the_lab_cannot_honour(bad: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_rate(bad)


def test_the_highest_rate_is_a_thousand_per_second() -> None:
    assert parse_rate("1000/s") == parse_rate("60000/m") == MAX_RATE_PER_S == 1000.0
