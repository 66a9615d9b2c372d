import pytest

from harness.durations import format_duration, parse_duration, parse_rate


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
