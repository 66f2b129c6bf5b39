from workers.vote import majority


def test_majority_and_ties() -> None:
    assert majority([True, True, False])
    assert not majority([True, False, False])
    assert not majority([True, False])  # a tie is not a majority: the caption is dropped
    assert majority([True])
    assert not majority([])
