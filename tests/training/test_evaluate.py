from dataclasses import replace

from sklearn.metrics import f1_score

from training.dataset import InstructionExample
from training.evaluate import category_of, majority_baseline


def _example(label: str) -> InstructionExample:
    return InstructionExample(
        task="SA",
        split="test",
        instruction="x",
        input="{}",
        options=["B: positive", "C: neutral", "D: negative"],
        output={"B": "B: positive", "C": "C: neutral", "D": "D: negative"}[label],
    )


def test_majority_baseline_answers_the_most_frequent_label() -> None:
    gold = list("BBBCCD")
    [score] = majority_baseline([_example(g) for g in gold]).values()
    expected = f1_score(gold, ["B"] * len(gold), average="macro", labels=sorted(set(gold)))
    assert abs(score.paper - expected) < 1e-9 and score.failures == 0


def test_category_of_reads_the_input_json() -> None:
    listing = replace(_example("B"), input='{"category": "womens-shoes", "seller_text": ""}')
    assert category_of(listing) == "womens-shoes"
    assert category_of(_example("B")) == ""
    assert category_of(replace(_example("B"), input='[{"category": "x"}]')) == ""
