from sklearn.metrics import f1_score

from training.dataset import InstructionExample
from training.evaluate import majority_baseline


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
