"""Synthetic, labelled claim and product images for VIT-Pro's DD, PM and AE tasks.

Everything here is **synthetic**: invented brands (:data:`~training.synthetic.products.BRANDS`,
none a real trademark) on packs (boxes) and bottles drawn with Pillow, with the brand, product
type, size ("500 ml", "200 g"), count ("12 PACK", "x6") and sometimes a target gender
("FOR MEN") and an expiry date ("EXP 03/2027") printed in large, clean TrueType text (DejaVu
where installed) in several faces, colours and layouts; the pack's fill is one of the OCR
captioner's colour names (:data:`workers.backends.ocr.COLOURS`). Customer photos put the pack on
a table against a wall with angle, scale and lighting jitter and, for damaged items, tears,
spills, crushed corners or broken seals (:mod:`training.synthetic.damage`); catalog images show
the listed product square-on and intact.

What a model can learn from which input:

- **Text only** (claim complaint, listing title/description): the complaint mentions damage
  for 70% of damaged and 30% of intact items by default (:class:`TextConfig`), so text alone
  gets DD to about 70% and no further; for PM it sees the listing but not the delivered item.
- **Text + OCR tokens of the photo** (the Tesseract captioner): brand, type, size, count,
  gender and expiry as printed, and the dominant colours; enough for PM (a wrong brand, size or
  type is printed on the pack) and for AE, but not for DD: OCR does not see a tear or a spill.
- **Seeing damage needs a VLM** (image input): the overlays are shapes and colours, not text.

Entry points: :func:`generate` (a :class:`SyntheticSet` of JSON-ready events and labels, images
under the folder) and ``python -m training.synthetic OUT --claims N --seed S``. Listings for
OPAL's LG task (seller photos, aspect schemas, reference and noisy seller listings):
:func:`~training.synthetic.listings.generate_listings`, ``--listings M``. A text-only shop for
CASLIE's AP, CC, PRP, PSI, MPC and SR (catalog, reviews, queries labelled by stated rules):
:func:`~training.synthetic.shop.generate_shop`, ``--shop K``.
"""

from training.synthetic.claims import (
    DEFAULT_KEYS,
    UNANSWERABLE,
    SyntheticSet,
    attribute_values,
    generate,
)
from training.synthetic.complaints import TextConfig

__all__ = [
    "DEFAULT_KEYS",
    "UNANSWERABLE",
    "SyntheticSet",
    "TextConfig",
    "attribute_values",
    "generate",
]
