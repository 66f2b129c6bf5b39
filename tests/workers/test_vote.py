from workers.vote import is_tie, majority, plurality_authors


def test_majority_and_ties() -> None:
    assert majority([True, True, False])
    assert not majority([True, False, False])
    assert majority([True])
    assert not majority([])
    # margins never overrule a majority
    assert not majority([True, False, False], [9.0, -0.1, -0.1])
    assert majority([True, True, False], [0.1, 0.1, -9.0])


def test_a_tie_goes_to_the_summed_yes_margin() -> None:
    assert is_tie([True, False]) and not is_tie([True, False, False]) and not is_tie([])
    assert majority([True, False], [2.3, -0.7])  # the more confident yes wins
    assert not majority([True, False], [0.2, -0.7])
    assert not majority([False, True, True, False], [-1.0, 0.5, 0.5, -0.5])
    assert majority([False, True, True, False], [-0.1, 0.5, 0.5, -0.5])
    # no margin at all (generated answers), or margins that cancel: a tie rejects
    assert not majority([True, False])
    assert not majority([True, False], [None, None])
    assert not majority([True, False], [1.0, -1.0])
    assert majority([True, False], [None, 0.4])


def test_the_authors_plurality_counts_raw_answers_and_breaks_ties_by_judge_order() -> None:
    assert plurality_authors(["yes", "no", "yes", "no", "yes"])
    assert not plurality_authors(["no", "yes", "no", "yes", "no"])
    # a plurality of "yes" without a majority still keeps (2 of 5)
    assert plurality_authors(["yes", "yes", "no", "sur", "i t"])
    # an answer that is neither yes nor no can win, and then nothing is kept
    assert not plurality_authors(["ye", "ye", "yes", "no", "ye"])
    # equal counts: the answer seen first (judge order) wins
    assert plurality_authors(["yes", "no"])
    assert not plurality_authors(["no", "yes"])
    assert not plurality_authors(["sur", "yes", "sur", "yes"])
    assert not plurality_authors([])
