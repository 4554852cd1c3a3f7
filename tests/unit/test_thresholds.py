"""The Monitoring Plugins' threshold ranges and performance data fields."""

import pytest

from runner.tools.thresholds import Range, perfdata


@pytest.mark.parametrize(("text", "alerting", "quiet"), [
    ("10", [-1, 10.5, 11], [0, 5, 10]),
    ("10:", [-1, 9.99], [10, 11, 1e9]),
    ("~:10", [10.01, 1e9], [-1e9, 0, 10]),
    ("10:20", [9, 21], [10, 15, 20]),
    ("@10:20", [10, 15, 20], [9, 21]),
    ("@0:0.5", [0, 0.25], [0.6]),
])
def test_ranges_alert_as_the_guidelines_say(text, alerting, quiet):
    r = Range.parse(text)
    assert [r.alerts(v) for v in alerting] == [True] * len(alerting)
    assert [r.alerts(v) for v in quiet] == [False] * len(quiet)
    assert str(r) == text


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a threshold range: ''"),
    ("1:2:3", "not a threshold range: '1:2:3'"),
    ("abc", "not a threshold range: 'abc'"),
    ("nan", "not a threshold range: 'nan'"),
    ("20:10", "threshold range '20:10' starts above its end"),
])
def test_bad_ranges_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        Range.parse(text)


def test_perfdata_fields():
    assert perfdata("time", 0.21, "s", Range.parse("1"), Range.parse("5"), 0) == "time=0.21s;1;5;0"
    assert perfdata("time", 0.2, "s", minimum=0) == "time=0.2s;;;0"
    assert perfdata("cert_days", 82, "", Range.parse("30:"), Range.parse("7:")) == "cert_days=82;30:;7:"
    assert perfdata("a b", 1) == "'a b'=1"
