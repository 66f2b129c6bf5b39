"""``python -m training.synthetic OUT --claims N --listings M --shop K --seed S``: write
synthetic sets (``--claims 0`` with ``--listings`` or ``--shop`` writes only those).

Claims (``--claims N``, 0 for none): OUT/catalog.jsonl, claims.jsonl, queries.jsonl,
labels.jsonl, splits.json (request id -> train/test), truth.jsonl (per-claim hidden facts),
manifest.json and OUT/images/*.png (:mod:`training.synthetic.claims`).

Listings (``--listings M``, default none) for OPAL's LG task, under OUT/listings/:
aspect_schemas.json, listings.jsonl, references.jsonl, queries.jsonl, labels.jsonl,
splits.json (train/val/test), manifest.json and images/*.png
(:mod:`training.synthetic.listings`).

Shop (``--shop K``, default none) for CASLIE's AP, CC, PRP, PSI, MPC and SR, K queries per
task, under OUT/shop/: catalog.jsonl, reviews.jsonl, queries.jsonl, labels.jsonl, splits.json
(train/val/test by brand) and manifest.json (:mod:`training.synthetic.shop`), no images.
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
from training.synthetic.shop import generate_shop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Generate synthetic, labelled claims (DD, PM, AE), listings (LG) and a shop "
        "(AP, CC, PRP, PSI, MPC, SR).",
    )
    parser.add_argument("out", type=Path, help="output folder (created if missing)")
    parser.add_argument(
        "--claims", type=int, default=100, help="number of claims (default 100; 0: none)"
    )
    parser.add_argument(
        "--listings", type=int, default=0, help="number of LG listings (default 0: none)"
    )
    parser.add_argument(
        "--shop", type=int, default=0, help="shop queries per task (default 0: none)"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of training listings (shop: brands) for val",
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
    counts = (args.claims, args.listings, args.shop)
    if min(counts) < 0 or not any(counts):
        parser.error("ask for some claims, listings or shop queries (--claims, --listings, --shop)")
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
        shop = (
            generate_shop(
                args.out / "shop",
                args.shop,
                seed=args.seed,
                test_fraction=args.test_fraction,
                val_fraction=args.val_fraction,
            )
            if args.shop
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
    if shop is not None:
        shop.write()
        said.append(f"{len(shop.queries)} shop queries, {len(shop.catalog)} products")
    elapsed = time.perf_counter() - started
    print(
        f"{', '.join(said)}, {n_images} images "
        f"in {elapsed:.1f}s ({n_images / elapsed:.1f} images/s) -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
