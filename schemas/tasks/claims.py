"""What VIT-Pro's claim tasks (DD, PM, AE) share: a query names a claim; the request carries
the claim's photos as slots ``claim/0``, ``claim/1`` ..., the customer's text and the listing
(title and description) from the catalog; the prompt is VIT-Pro's form with OCR tokens.

Automatic requests: every new claim on ``claims`` yields one query per claim task the router
is configured for (``router.claim_tasks``), request id ``auto-<task>:<claim_id>``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import ClassVar

from schemas.base import Identifier
from schemas.events import ClaimEvent, ProductEvent, Query
from schemas.records import ImageSlot, TaskRequest
from schemas.tasks.prompts import (
    NO_CAPTION,
    NO_OCR,
    VITPRO_INSTRUCTION,
    numbered_images,
    vitpro_prompt,
)
from schemas.tasks.resolving import Tables, claim_of, image_slot, products_of, slot_for
from schemas.tasks.sample import InstructionSample
from schemas.tasks.spec import Task

#: Customer text in a prompt is cut to this many characters (the claim itself holds 8,000).
PROMPT_TEXT_LIMIT = 1_000


class ClaimQuery(Query):
    """A claim task asked of the claim ``claim_id`` (already on the ``claims`` topic)."""

    claim_id: Identifier


def listing_text(product: ProductEvent) -> str:
    """The listing as PM compares it: title, then the description if any."""
    return product.title if not product.description else f"{product.title}. {product.description}"


def short(text: str, limit: int = PROMPT_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


class ClaimTask(Task):
    """A VIT-Pro task on a claim's photos; subclasses set the question and the templates."""

    family = "vitpro"
    ocr_tokens = True
    caption_keys = ("Image information",)
    question: ClassVar[str]
    instruction = VITPRO_INSTRUCTION
    #: Whether the listing's catalog image is a slot too (``reference``, numbered last).
    reference_image: ClassVar[bool] = False

    def product_ids(self, query: Query) -> list[str]:
        return []  # the product comes from the claim: see resolve

    def slot_values(self, claim: ClaimEvent, product: ProductEvent) -> dict[str, str]:
        """Values of the caption and judge templates (the same for every photo)."""
        return {"claim": short(claim.text), "title": product.title}

    def inputs(self, claim: ClaimEvent, product: ProductEvent) -> dict[str, str | list[str]]:
        return {
            "claim_id": claim.claim_id,
            "claim_text": short(claim.text),
            "title": product.title,
            "listing": short(listing_text(product)),
        }

    def request_options(self, query: Query) -> list[str]:
        return list(self.options)

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        from schemas.tasks.resolving import new_request

        assert isinstance(query, ClaimQuery)
        claim = claim_of(query.claim_id, tables)
        product = products_of([claim.product_id], tables)[claim.product_id]
        values = self.slot_values(claim, product)
        slots: list[ImageSlot] = []
        for i, image in enumerate(claim.images):
            slots += slot_for(f"claim/{i}", image, values, values)
        if self.reference_image:
            slots += image_slot("reference", product, values, values)
        return new_request(
            query,
            query.request_id,
            self.code,
            inputs=self.inputs(claim, product),
            options=self.request_options(query),
            slots=slots,
        )

    def for_claim(self, claim: ClaimEvent) -> Query | None:
        return self.auto_query("claim_id", claim.claim_id)

    # -- the sample ------------------------------------------------------------------------

    def context(self, request: TaskRequest) -> dict[str, str]:
        """Fields before the image information (e.g. the listing, the customer's text)."""
        return {}

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        ocr = ocr or {}
        photos = [s.slot for s in request.slots if s.slot.startswith("claim/")]
        order = photos + [s.slot for s in request.slots if s.slot == "reference"]
        data: dict[str, object] = dict(self.context(request))
        captions = [kept[slot] for slot in order if slot in kept]
        if captions:
            data["Image information"] = (
                captions[0]
                if len(order) == 1
                else numbered_images([kept.get(slot, NO_CAPTION) for slot in order])
            )
        tokens = [ocr.get(slot) or NO_OCR for slot in order]
        data["Question"] = self.question
        data["OCR Tokens"] = (
            (tokens[0] if len(order) == 1 else numbered_images(tokens)) if order else NO_OCR
        )
        return InstructionSample(self.code, self.instruction, data, list(request.options))

    def prompt(self, sample: InstructionSample) -> str:
        assert isinstance(sample.input, dict)
        fields = {k: str(v) for k, v in sample.input.items() if k != "Question"}
        return vitpro_prompt(sample.instruction, str(sample.input["Question"]), fields)
