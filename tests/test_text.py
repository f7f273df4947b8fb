"""The one place that decides what outside text can be stored (``configcat_segment.text``)."""

import pytest

from configcat_segment import text


@pytest.mark.parametrize(
    ("value", "storable"),
    [
        ("plain", True),
        ("➔ café 😀", True),
        ("", True),
        ("a\x00b", False),
        ("a\ud800b", False),
        ("\ud83d\ude00", False),  # a surrogate pair left as two code points: joined when cleaned
    ],
)
def test_is_clean_says_whether_clean_would_change_the_text(value, storable):
    assert text.is_clean(value) is storable
    assert (text.clean(value) == value) is storable
    assert text.is_clean(text.clean(value))


def test_contains_nul_is_about_nul_only():
    assert text.contains_nul("a\x00")
    assert not text.contains_nul("a\ud800")
    assert not text.contains_nul(text.clean("a\x00"))
