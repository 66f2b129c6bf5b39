"""SR, sequential recommendation: the next purchase among candidate products (options A..T)
given the purchase history; every history item and candidate has an image slot. Recall@1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from schemas.base import Identifier
from schemas.events import ProductEvent, Query
from schemas.records import ImageSlot, TaskRequest
from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.resolving import Tables, image_slot, new_request, products_of
from schemas.tasks.sample import InstructionSample, with_caption
from schemas.tasks.spec import Task, letter_options, ordinal


class SRQuery(Query):
    """Next purchase: history product ids, candidate product ids (options A..T)."""

    task: Literal["SR"]
    history_product_ids: list[Identifier] = Field(min_length=1, max_length=20)
    candidate_product_ids: list[Identifier] = Field(min_length=2, max_length=20)


def _item_text(product: ProductEvent) -> str:
    """SR's ``{title, category, brand}`` judge slot."""
    return ", ".join(p for p in (product.title, product.category, product.brand) if p)


class SequentialRecommendation(Task):
    code = "SR"
    name = "sequential recommendation"
    query_model = SRQuery
    input_fields = ("history", "candidates")
    answer = "lettered"
    metric = "recall_at_1"
    caption_template = (
        CAPTION_PREFIX + "Here is the product title: {title}. The caption should be helpful in "
        "predicting the next product the user is most likely to purchase by analyzing the "
        "user's intent based on the user's purchase history."
    )
    judge_template = (
        "The task needs to recommend the next product that the user may be interested in based "
        "on the user's purchase history. Here is the title of a product from purchase history: "
        "{item}, and the information extracted from the product image: {caption}. You need to "
        "determine if the information extracted from the image will be helpful for "
        "recommendation. Only output yes or no."
    )
    instruction = (
        "Estimate the user's intent based on the user's purchase history, and predict the next "
        "product that the user is most likely to purchase from the given options."
    )

    def product_ids(self, query: Query) -> list[str]:
        assert isinstance(query, SRQuery)
        return list(dict.fromkeys([*query.history_product_ids, *query.candidate_product_ids]))

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        assert isinstance(query, SRQuery)
        found = products_of(self.product_ids(query), tables)
        history = [found[pid] for pid in query.history_product_ids]
        candidates = [found[pid] for pid in query.candidate_product_ids]
        options = letter_options([c.title for c in candidates])
        slots: list[ImageSlot] = []
        for i, item in enumerate(history):
            slots += image_slot(
                f"history/{i}", item, {"title": item.title}, {"item": _item_text(item)}
            )
        for opt, item in zip(options, candidates, strict=True):
            letter = opt.split(":", 1)[0]
            slots += image_slot(
                f"option/{letter}", item, {"title": item.title}, {"item": _item_text(item)}
            )
        return new_request(
            query,
            query.request_id,
            self.code,
            inputs={
                "history": [h.title for h in history],
                "candidates": [c.title for c in candidates],
            },
            options=options,
            slots=slots,
        )

    def assemble(
        self, request: TaskRequest, kept: Mapping[str, str], ocr: Mapping[str, str] | None = None
    ) -> InstructionSample:
        history = request.inputs["history"]
        assert isinstance(history, list)
        data: dict[str, object] = {
            "purchase history": [
                with_caption(f"{ordinal(i + 1)}: {title}", kept.get(f"history/{i}"))
                for i, title in enumerate(history)
            ]
        }
        options = [
            with_caption(opt, kept.get(f"option/{opt.split(':', 1)[0]}")) for opt in request.options
        ]
        return InstructionSample(self.code, self.instruction, data, options)


TASK = SequentialRecommendation()
