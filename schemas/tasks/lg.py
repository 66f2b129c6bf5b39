"""LG, listing generation (OPAL): draft a marketplace listing from a seller's photos, a title
and the category's aspects, as one JSON object ``{"title": "...", "aspects": {...}}``.

A query names a listing (already on ``listings``); the router asks LG of every new listing
(``router.listing_tasks``) and resolves it against its category's aspect schema (topic
``aspect_schemas``): the request carries the category, the seller's text and the schema
(``inputs["aspect_schema"]``), the allowed aspect names in schema order as its ``options``
and the photos as slots ``listing/0``, ``listing/1`` ... A listing whose category has no
schema yet waits for it like a query waits for a product.

The answer's text is :func:`canonical_listing`: compact JSON, ``title`` first, then the
aspects in the schema's order (keys outside the schema after them, in the order written, so
schema compliance stays measurable on free decoding). The predictor decodes under
:func:`listing_json_schema`, so each of its answers has the required aspects, no others, and
only listed values where the schema lists values. Metric: ROUGE-L F1 of the JSON strings
(``rouge_l``); aspect F1 and schema recall are reported beside it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import orjson

from schemas.base import Identifier
from schemas.events import AspectSpec, ListingEvent, Query
from schemas.records import ImageSlot, TaskRequest
from schemas.tasks.claims import short
from schemas.tasks.prompts import CAPTION_PREFIX, NO_CAPTION, NO_OCR, numbered_images
from schemas.tasks.resolving import Tables, aspect_schema_of, listing_of, slot_for
from schemas.tasks.sample import OCR_KEY, InstructionSample
from schemas.tasks.spec import Task

#: The longest title a draft may have (marketplaces cap titles at about 80 characters).
TITLE_LIMIT = 80
#: The longest free aspect value a draft may have.
VALUE_LIMIT = 64
#: Seller text in a caption prompt is cut to this many characters.
CAPTION_TEXT_LIMIT = 300
IMAGE_KEY = "image information"
#: The input key of the category's aspects (:func:`aspect_rows`) in an LG sample.
ALLOWED_KEY = "allowed aspects"


class LGQuery(Query):
    """LG asked of the listing ``listing_id`` (already on the ``listings`` topic)."""

    task: Literal["LG"]
    listing_id: Identifier


def listing_json_schema(
    aspects: Sequence[AspectSpec], max_value_chars: int = VALUE_LIMIT
) -> dict[str, Any]:
    """JSON Schema of a listing draft for a category: ``title`` (1 to :data:`TITLE_LIMIT`
    characters) and ``aspects``: only the schema's names, in its order, the required ones
    required, a listed aspect one of its values, a free one 1 to ``max_value_chars``
    characters; nothing else anywhere."""
    if not aspects:
        raise ValueError("a listing schema needs at least one aspect")
    if max_value_chars < 1:
        raise ValueError(f"max_value_chars must be positive, not {max_value_chars}")
    properties: dict[str, Any] = {
        a.name: (
            {"enum": list(a.values)}
            if a.values
            else {"type": "string", "minLength": 1, "maxLength": max_value_chars}
        )
        for a in aspects
    }
    return {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": TITLE_LIMIT},
            "aspects": {
                "type": "object",
                "properties": properties,
                "required": [a.name for a in aspects if a.required],
                "additionalProperties": False,
            },
        },
        "required": ["title", "aspects"],
        "additionalProperties": False,
    }


def canonical_listing(title: str, aspects: Mapping[str, str], names: Sequence[str]) -> str:
    """The draft's text: compact JSON, ``title`` first, then the aspects in the order of
    ``names`` (the schema's), any others after them in their own order."""
    ordered = {n: aspects[n] for n in names if n in aspects}
    ordered.update({k: v for k, v in aspects.items() if k not in ordered})
    return orjson.dumps({"title": title, "aspects": ordered}).decode()


def parse_listing(text: str, names: Sequence[str]) -> str | None:
    """A draft -> its canonical text; ``None`` unless ``text`` is one JSON object with exactly
    ``title`` (a string) and ``aspects`` (an object of strings). Aspects outside ``names``
    are kept (schema recall counts them)."""
    try:
        obj = orjson.loads(text.strip())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or set(obj) != {"title", "aspects"}:
        return None
    title, aspects = obj["title"], obj["aspects"]
    if not isinstance(title, str) or not isinstance(aspects, dict):
        return None
    if not all(isinstance(v, str) for v in aspects.values()):
        return None
    return canonical_listing(title, aspects, names)


def aspects_of(request: TaskRequest) -> list[AspectSpec]:
    """The category's aspects a request carries (``inputs["aspect_schema"]``)."""
    aspects = request.inputs["aspect_schema"]
    if not isinstance(aspects, list) or not all(isinstance(a, AspectSpec) for a in aspects):
        raise ValueError(f"{request.request_id}: aspect_schema is not a list of aspects")
    return [a for a in aspects if isinstance(a, AspectSpec)]


def aspect_rows(aspects: Sequence[AspectSpec]) -> list[dict[str, object]]:
    """The aspects as the request and the prompt carry them: name, required, values (when
    listed)."""
    return [a.model_dump(mode="json", exclude_none=True) for a in aspects]


def sample_aspects(sample: InstructionSample) -> list[AspectSpec]:
    """The category's aspects an assembled LG sample carries (:data:`ALLOWED_KEY`, written by
    :func:`aspect_rows`): what an instruction example keeps of its request's schema.
    ``ValueError`` when the input has none."""
    rows = sample.input.get(ALLOWED_KEY) if isinstance(sample.input, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"an LG sample's input carries its {ALLOWED_KEY!r}, not {rows!r}")
    return [AspectSpec.model_validate(row) for row in rows]


class ListingGeneration(Task):
    code = "LG"
    name = "listing generation"
    family = "opal"
    query_model = LGQuery
    input_fields = ("category", "seller_text", "aspect_schema")
    answer = "json"
    metric = "rouge_l"
    ocr_tokens = True
    caption_keys = (IMAGE_KEY,)
    instruction = (
        "Write the marketplace listing of the item in the seller's photos: a title of at most "
        f"{TITLE_LIMIT} characters and the item's aspects, as a JSON object "
        '{"title": "...", "aspects": {"name": "value", ...}}. Use only the allowed aspects, '
        "fill every required one, pick one of the listed values where an aspect lists values, "
        "and state only what the photos or the seller's text show."
    )
    caption_template = (
        CAPTION_PREFIX + "The caption should be helpful to write the item's listing in the "
        "category {category}: its title and aspects (brand, type, colour, size, material, "
        "condition). Here is what the seller wrote: {seller_text}."
    )
    judge_template = (
        "The task needs to write a marketplace listing (a title and the item's aspects) for an "
        "item in the category {category} from the seller's photo. Here is the information "
        "about the item extracted from the photo: {caption}. You need to determine if the "
        "information extracted from the image will help to write this listing. Only output "
        "yes or no."
    )

    def product_ids(self, query: Query) -> list[str]:
        return []  # a listing is not a catalog product

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        from schemas.tasks.resolving import new_request

        assert isinstance(query, LGQuery)
        listing = listing_of(query.listing_id, tables)
        schema = aspect_schema_of(listing.category, tables)
        seller = listing.seller_text or ""
        caption = {"category": listing.category, "seller_text": short(seller, CAPTION_TEXT_LIMIT)}
        caption["seller_text"] = caption["seller_text"] or "nothing"
        judge = {"category": listing.category}
        slots: list[ImageSlot] = []
        for i, image in enumerate(listing.images):
            slots += slot_for(f"listing/{i}", image, caption, judge)
        return new_request(
            query,
            query.request_id,
            self.code,
            inputs={
                "category": listing.category,
                "seller_text": seller,
                "aspect_schema": list(schema.aspects),
            },
            options=[a.name for a in schema.aspects],
            slots=slots,
        )

    def for_listing(self, listing: ListingEvent) -> Query | None:
        return self.auto_query("listing_id", listing.listing_id)

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        ocr = ocr or {}
        order = [s.slot for s in request.slots]
        data: dict[str, object] = {
            "category": request.inputs["category"],
            "seller text": request.inputs["seller_text"] or "none",
        }
        captions = [kept[slot] for slot in order if slot in kept]
        if captions:
            data[IMAGE_KEY] = (
                captions[0]
                if len(order) == 1
                else numbered_images([kept.get(slot, NO_CAPTION) for slot in order])
            )
        tokens = [ocr.get(slot) or NO_OCR for slot in order]
        data[OCR_KEY] = numbered_images(tokens) if len(tokens) > 1 else (tokens or [NO_OCR])[0]
        data[ALLOWED_KEY] = aspect_rows(aspects_of(request))
        return InstructionSample(self.code, self.instruction, data, list(request.options))

    # -- answers ---------------------------------------------------------------------------

    def parse(self, text: str, labels: Sequence[str]) -> str | None:
        return parse_listing(text, labels)

    def is_legal(self, label: str, options: Sequence[str]) -> bool:
        """A gold draft: it parses, and every aspect is one of the allowed ``options``."""
        text = parse_listing(label, options)
        return text is not None and set(orjson.loads(text)["aspects"]) <= set(options)

    def answer_schema(self, request: TaskRequest) -> dict[str, Any] | None:
        return listing_json_schema(aspects_of(request))

    def sample_schema(self, sample: InstructionSample) -> dict[str, Any] | None:
        return listing_json_schema(sample_aspects(sample))


TASK = ListingGeneration()
