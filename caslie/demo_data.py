"""The demo's built-in sample: product images drawn with Pillow (brand and product text),
products, reviews, a customer claim with its photo, at least one query for each of CASLIE's
seven tasks, and a seller's listing (a photo of a mug drawn by the synthetic listings'
generator) with its category's aspect schema; the router asks VIT-Pro's DD, PM and AE of the
claim and OPAL's LG of the listing by itself."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from training.synthetic.claims import save_png
from training.synthetic.item_drawing import draw_item, seller_photo
from training.synthetic.items import CATEGORY_BY_NAME, Item

# (product id, brand, product text, background, text colour, title, category)
PRODUCTS = [
    (
        "kettle",
        "ACME",
        "STEEL KETTLE",
        (190, 30, 30),
        (255, 255, 255),
        "Acme 1.7L electric kettle",
        "Kitchen",
    ),
    (
        "mug",
        "BREWCO",
        "CERAMIC MUG",
        (250, 250, 245),
        (20, 20, 20),
        "Brewco ceramic coffee mug 350ml",
        "Kitchen",
    ),
    (
        "teapot",
        "ZENLEAF",
        "GLASS TEAPOT",
        (230, 240, 230),
        (20, 90, 40),
        "Zenleaf glass teapot with infuser",
        "Kitchen",
    ),
    (
        "headphones",
        "SONORA",
        "WIRELESS",
        (20, 30, 90),
        (250, 250, 250),
        "Sonora over-ear headphones",
        "Electronics",
    ),
    (
        "charger",
        "VOLTIX",
        "USB-C 65W",
        (250, 250, 250),
        (30, 30, 30),
        "Voltix 65W USB-C wall charger",
        "Electronics",
    ),
]


def draw_product(
    path: Path,
    brand: str,
    text: str,
    background: tuple[int, int, int],
    colour: tuple[int, int, int],
) -> None:
    img = Image.new("RGB", (500, 500), background)
    draw = ImageDraw.Draw(img)
    big = ImageFont.load_default(size=64)
    small = ImageFont.load_default(size=44)
    draw.rectangle((30, 30, 470, 470), outline=colour, width=6)
    draw.text((250, 170), brand, fill=colour, font=big, anchor="mm")
    draw.text((250, 320), text, fill=colour, font=small, anchor="mm")
    img.save(path)


def draw_claim_photo(path: Path) -> None:
    """The customer's photo of the delivered shampoo: the pack, its size and a torn corner."""
    img = Image.new("RGB", (500, 500), (40, 80, 200))
    draw = ImageDraw.Draw(img)
    for y, text, size in ((140, "LUSTRA", 64), (240, "SHAMPOO", 48), (330, "250 ml", 48)):
        font = ImageFont.load_default(size=size)
        draw.text((250, y), text, fill=(255, 255, 255), font=font, anchor="mm")
    draw.polygon([(380, 500), (500, 380), (500, 500)], fill=(245, 245, 245))  # torn off
    draw.line(
        [(380, 500), (420, 470), (445, 450), (470, 410), (500, 380)], fill=(20, 20, 20), width=4
    )
    img.save(path)


#: The item of the demo's listing: a red Brewco mug (category ``mugs``: Brand and Color
#: required, Color, Material, Capacity and Dishwasher Safe with listed values); its material,
#: capacity and dishwasher-safe mark are printed on it, its country is only in the seller's text.
LISTING_ITEM = Item(
    CATEGORY_BY_NAME["mugs"],
    "red",
    {
        "Brand": "Brewco",
        "Color": "Red",
        "Material": "Ceramic",
        "Capacity": "350 ml",
        "Dishwasher Safe": "Yes",
        "Country of Manufacture": "Portugal",
    },
    ("Material", "Capacity", "Dishwasher Safe"),
)
LISTING_SELLER_TEXT = "Brewco red ceramic mug 350ml, made in Portugal. L@@K fast shipping!"
#: Seed of the listing photo's drawing (silhouette, faces, scene), so every run draws the same.
LISTING_SEED = 17


def aspect_schema() -> dict[str, Any]:
    """The ``aspect_schemas`` event of the demo listing's category."""
    return LISTING_ITEM.category.schema_event()


def draw_listing(folder: Path, run_id: str) -> dict[str, Any]:
    """Draw the seller's photo of :data:`LISTING_ITEM` into ``folder``; the ``listings``
    event (listing id ``demo-<run_id>-listing``)."""
    rng = random.Random(LISTING_SEED)
    image = save_png(seller_photo(draw_item(LISTING_ITEM, rng), rng), folder / "listing.png")
    return {
        "listing_id": f"demo-{run_id}-listing",
        "category": LISTING_ITEM.category.name,
        "images": [image],
        "seller_text": LISTING_SELLER_TEXT,
    }


def build_sample(folder: Path, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Draw the images into ``folder`` and return the events to produce, by logical topic."""
    folder.mkdir(parents=True, exist_ok=True)
    products: list[dict[str, Any]] = []
    for pid, brand, text, bg, fg, title, category in PRODUCTS:
        path = folder / f"{pid}.png"
        draw_product(path, brand, text, bg, fg)
        products.append(
            {
                "product_id": pid,
                "title": title,
                "brand": brand.title(),
                "category": category,
                "images": [{"url": path.resolve().as_uri()}],
            }
        )
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    products.append(
        {
            "product_id": "lamp",
            "title": "Lumo desk lamp",
            "brand": "Lumo",
            "images": [{"url": broken.resolve().as_uri()}],
        }
    )
    review_image = folder / "review.png"
    draw_product(review_image, "5 STARS", "LOVE IT", (255, 230, 120), (60, 30, 0))
    reviews: list[dict[str, Any]] = [
        {
            "review_id": "rv-kettle-1",
            "product_id": "kettle",
            "rating": 5,
            "text": "Boils water in two minutes, the steel body stays cool on the outside.",
        },
        {
            "review_id": "rv-mug-1",
            "product_id": "mug",
            "rating": 5,
            "text": "Great mug, keeps my coffee warm and looks lovely on my desk.",
            "images": [{"url": review_image.resolve().as_uri()}],
        },
    ]
    rid = f"demo-{run_id}"
    queries: list[dict[str, Any]] = [
        {
            "request_id": f"{rid}-ap",
            "task": "AP",
            "product_id": "kettle",
            "question": "Does the kettle have a steel body?",
        },
        {
            "request_id": f"{rid}-cc",
            "task": "CC",
            "product_id": "mug",
            "options": ["Coffee Mugs", "Wine Glasses", "Teapots", "Headphones"],
        },
        {
            "request_id": f"{rid}-prp",
            "task": "PRP",
            "product_id": "teapot",
            "other_product_id": "mug",
        },
        {
            "request_id": f"{rid}-psi",
            "task": "PSI",
            "product_id": "charger",
            "query": "100w laptop charger",
        },
        {
            "request_id": f"{rid}-mpc",
            "task": "MPC",
            "product_id": "headphones",
            "query": "wireless bluetooth headphones",
        },
        {"request_id": f"{rid}-sa", "task": "SA", "review_id": "rv-mug-1", "product_id": "mug"},
        {
            "request_id": f"{rid}-sr",
            "task": "SR",
            "history_product_ids": ["kettle", "mug"],
            "candidate_product_ids": ["teapot", "headphones", "charger"],
        },
        {"request_id": f"{rid}-broken", "task": "MPC", "product_id": "lamp", "query": "desk lamp"},
        {
            "request_id": f"{rid}-missing-image",
            "task": "PSI",
            "product_id": "ghost-image",
            "query": "reading lamp",
        },
    ]
    products.append(
        {
            "product_id": "ghost-image",
            "title": "Nova reading lamp",
            "images": [{"url": "http://127.0.0.1:9/unreachable.png"}],
        }
    )
    listing = folder / "shampoo.png"
    draw_product(listing, "LUSTRA", "SHAMPOO 500 ml", (40, 80, 200), (255, 255, 255))
    products.append(
        {
            "product_id": "shampoo",
            "title": "Lustra shampoo 500 ml",
            "brand": "Lustra",
            "category": "Beauty",
            "description": "Shampoo for dry hair, 500 ml bottle.",
            "images": [{"url": listing.resolve().as_uri()}],
        }
    )
    photo = folder / "claim.png"
    draw_claim_photo(photo)
    claims = [
        {
            "claim_id": f"demo-{run_id}-claim",
            "product_id": "shampoo",
            "text": "I ordered the 500 ml shampoo; a small 250 ml bottle came and the box is torn.",
            "images": [{"url": photo.resolve().as_uri()}],
            "order_id": "order-1",
        }
    ]
    return {
        "catalog": products,
        "reviews": reviews,
        "claims": claims,
        "aspect_schemas": [aspect_schema()],
        "listings": [draw_listing(folder, run_id)],
        "queries": queries,
    }
