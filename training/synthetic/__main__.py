"""``python -m training.synthetic OUT --claims N --seed S``: write a synthetic claim set.

Writes OUT/catalog.jsonl, claims.jsonl, queries.jsonl, labels.jsonl, splits.json (request id
-> train/test), truth.jsonl (per-claim hidden facts), manifest.json and OUT/images/*.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from training.synthetic.claims import DEFAULT_KEYS, generate
from training.synthetic.complaints import TextConfig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Generate synthetic, labelled claim and product images for DD, PM and AE.",
    )
    parser.add_argument("out", type=Path, help="output folder (created if missing)")
    parser.add_argument("--claims", type=int, default=100, help="number of claims (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--keys",
        default=",".join(DEFAULT_KEYS),
        help="comma-separated AE keys (default: %(default)s)",
    )
    parser.add_argument("--test-fraction", type=float, default=0.25, help="share of test brands")
    parser.add_argument("--claims-per-listing", type=int, default=2)
    parser.add_argument(
        "--damaged-mentions",
        type=float,
        default=TextConfig.damaged_mentions,
        help="P(complaint mentions damage | damaged) (default %(default)s)",
    )
    parser.add_argument(
        "--intact-mentions",
        type=float,
        default=TextConfig.intact_mentions,
        help="P(complaint mentions damage | intact) (default %(default)s)",
    )
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.keys.split(",") if k.strip()]
    started = time.perf_counter()
    try:
        result = generate(
            args.out,
            args.claims,
            seed=args.seed,
            keys=keys,
            test_fraction=args.test_fraction,
            claims_per_listing=args.claims_per_listing,
            text=TextConfig(
                damaged_mentions=args.damaged_mentions, intact_mentions=args.intact_mentions
            ),
        )
    except ValueError as exc:
        parser.error(str(exc))
    result.write()
    elapsed = time.perf_counter() - started
    n_images = len(result.catalog) + sum(len(c["images"]) for c in result.claims)
    print(
        f"{len(result.claims)} claims, {len(result.catalog)} listings, {n_images} images "
        f"in {elapsed:.1f}s ({n_images / elapsed:.1f} images/s) -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
