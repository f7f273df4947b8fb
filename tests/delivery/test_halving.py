"""The halve-until-alone search, alone: pure, no database, no server."""

import math

import pytest

from configcat_segment.delivery.halving import Halving, Part, halves


def run(groups, refuses):
    """Run the whole search; ``refuses(items)`` says whether a part is refused. Returns the
    parts tried, in order, and the items refused alone."""
    search = Halving(groups)
    tried = []
    while search:
        part = search.next_part()
        tried.append(part.items)
        if refuses(part.items):
            search.refused(part, f"refused {part.items}")
    return tried, search.alone


def test_halves_the_first_one_shorter_and_one_item_stays_whole():
    assert halves([1, 2, 3, 4]) == [[1, 2], [3, 4]]
    assert halves([1, 2, 3]) == [[1], [2, 3]]
    assert halves([1]) == [[1]]
    assert halves([]) == [[]]


def test_nothing_refused_tries_each_group_once():
    tried, alone = run([[1, 2], [3]], lambda items: False)
    assert tried == [[1, 2], [3]]
    assert alone == []


def test_refused_items_end_up_alone_with_the_reason_depth_first():
    tried, alone = run([[1, 2, 3, 4, 5, 6, 7, 8]], lambda items: 3 in items)
    assert tried == [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4], [1, 2], [3, 4], [3], [4], [5, 6, 7, 8]]
    assert alone == [(3, "refused [3]")]  # the reason it was refused alone


def test_several_bad_items_among_many_cost_about_2k_log2_n_over_k():
    n, bad = 1024, {5, 500, 1000}
    tried, alone = run([list(range(n))], lambda items: bool(bad & set(items)))
    assert [item for item, _ in alone] == sorted(bad)
    assert len(tried) <= 2 * len(bad) * math.log2(n / len(bad)) + 2 * len(bad) + 1


def test_a_single_item_refused_is_alone_at_once():
    tried, alone = run([[7]], lambda items: True)
    assert tried == [[7]]
    assert alone == [(7, "refused [7]")]


def test_a_caller_may_stop_and_see_what_is_left_and_why():
    search = Halving([[1, 2, 3, 4], [5, 6]])
    first = search.next_part()
    search.refused(first, "400")
    assert search.remaining() == [Part([1, 2], "400"), Part([3, 4], "400"), Part([5, 6], None)]
    assert search.take_alone() == []
    part = search.next_part()
    search.refused(part, "400 again")
    search.refused(search.next_part(), "alone")  # [1]
    assert search.take_alone() == [(1, "alone")]
    assert search.take_alone() == []  # taken


def test_next_part_of_an_empty_search_raises():
    search = Halving([])
    assert not search
    with pytest.raises(IndexError):
        search.next_part()
