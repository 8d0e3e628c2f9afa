from datetime import timedelta

import pytest

from conveyor.cache import parse_ttl


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (None, None),
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("250ms", 0.25),
        (" 1H ", 3600.0),
        ("1m30s", 90.0),
        (timedelta(minutes=5), 300.0),
    ],
)
def test_durations(given: object, seconds: float | None) -> None:
    assert parse_ttl(given) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "soon", "1x", "h", "1h 30m", "-5", 0, -1, True, [1], "1e999"])
def test_bad_durations_name_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match="ttl"):
        parse_ttl(bad)  # type: ignore[arg-type]
