"""``python -m training.synthetic OUT --claims N --listings M --seed S``: write synthetic sets.

Claims (``--claims N``, 0 for none): OUT/catalog.jsonl, claims.jsonl, queries.jsonl,
labels.jsonl, splits.json (request id -> train/test), truth.jsonl (per-claim hidden facts),
manifest.json and OUT/images/*.png (:mod:`training.synthetic.claims`).

Listings (``--listings M``, default none) for OPAL's LG task, under OUT/listings/:
aspect_schemas.json, listings.jsonl, references.jsonl, queries.jsonl, labels.jsonl,
splits.json (train/val/test), manifest.json and images/*.png
(:mod:`training.synthetic.listings`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from training.synthetic.claims import DEFAULT_KEYS, generate
from training.synthetic.complaints import TextConfig
from training.synthetic.listings import generate_listings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Generate synthetic, labelled claims (DD, PM, AE) and listings (LG).",
    )
    parser.add_argument("out", type=Path, help="output folder (created if missing)")
    parser.add_argument(
        "--claims", type=int, default=100, help="number of claims (default 100; 0: none)"
    )
    parser.add_argument(
        "--listings", type=int, default=0, help="number of LG listings (default 0: none)"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="share of training listings for val"
    )
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
    if args.claims < 0 or args.listings < 0 or not (args.claims or args.listings):
        parser.error("ask for some claims or listings (--claims N, --listings M)")
    started = time.perf_counter()
    try:
        claims = (
            generate(
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
            if args.claims
            else None
        )
        listings = (
            generate_listings(
                args.out / "listings",
                args.listings,
                seed=args.seed,
                test_fraction=args.test_fraction,
                val_fraction=args.val_fraction,
            )
            if args.listings
            else None
        )
    except ValueError as exc:
        parser.error(str(exc))
    n_images = 0
    said = []
    if claims is not None:
        claims.write()
        n_images += len(claims.catalog) + sum(len(c["images"]) for c in claims.claims)
        said.append(f"{len(claims.claims)} claims, {len(claims.catalog)} listings")
    if listings is not None:
        listings.write()
        n_images += sum(len(item["images"]) for item in listings.listings)
        said.append(f"{len(listings.listings)} LG listings")
    elapsed = time.perf_counter() - started
    print(
        f"{', '.join(said)}, {n_images} images "
        f"in {elapsed:.1f}s ({n_images / elapsed:.1f} images/s) -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
