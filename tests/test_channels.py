"""Per-channel numbers as users state them (xai_core.channels): the command line's --mean/--std,
the app's upload form and load_model's keywords share one parser."""

from __future__ import annotations

import pytest

from xai_core.channels import parse_channels


def test_text_numbers_and_sequences():
    assert parse_channels("0.4, 0.5,0.6", "mean") == (0.4, 0.5, 0.6)
    assert parse_channels("(0.4 0.5 0.6)", "mean") == (0.4, 0.5, 0.6)
    assert parse_channels("[0.4,0.5 , 0.6]", "mean") == (0.4, 0.5, 0.6)
    assert parse_channels("0.5", "std") == (0.5, 0.5, 0.5) == parse_channels(0.5, "std")
    assert parse_channels([1, 2, 3], "mean") == (1.0, 2.0, 3.0) == parse_channels((1.0, 2.0, 3.0), "mean")
    assert parse_channels("  ", "std") is None and parse_channels(None, "std") is None


@pytest.mark.parametrize("value", ["0.4, 0.5", "red", "1,2,3,4", [1, 2], [], ["a", 1, 2], {"r": 1}])
def test_anything_but_three_numbers_is_one_line_naming_the_option(value):
    with pytest.raises(ValueError) as refused:
        parse_channels(value, "--mean")
    assert str(refused.value) == (
        f"--mean takes three numbers (one per RGB channel, e.g. 0.45, 0.45, 0.45), got {value!r}"
    )


def test_positive_and_the_callers_error():
    class Refused(Exception):
        pass

    assert parse_channels("0.2 0.1 0.3", "std", positive=True) == (0.2, 0.1, 0.3)
    with pytest.raises(Refused, match=r"^std must be positive, got '0.2 0 0.3'$"):
        parse_channels("0.2 0 0.3", "std", positive=True, error=Refused)
    assert parse_channels("0 0 0", "mean") == (0.0, 0.0, 0.0)  # a mean may be zero
