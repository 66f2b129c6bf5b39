"""SR, sequential recommendation: the next purchase among candidate products (options A..T)
given the purchase history; every history item and candidate has an image slot. Recall@1."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from pydantic import Field

from schemas.base import Identifier
from schemas.events import ProductEvent, Query
from schemas.records import ImageSlot, TaskRequest
from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.resolving import Tables, image_slot, new_request, products_of
from schemas.tasks.sample import InstructionSample, SampleInput, with_caption, without_caption
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
    #: The authors' SR input is a bare list: a kept caption is appended to its item / option.
    caption_keys = ()
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
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        history = request.inputs["history"]
        assert isinstance(history, list)
        items: list[object] = [f"{ordinal(i + 1)}: {title}" for i, title in enumerate(history)]
        return self.with_captions(items, request.options, kept, captioned)

    def caption_slots(self, data: SampleInput, options: Sequence[str]) -> list[str]:
        """Every history item, then every option (``history/0`` ..., ``option/A`` ...)."""
        return [f"history/{i}" for i in range(len(data))] + [
            f"option/{_letter(opt)}" for opt in options
        ]

    def with_captions(
        self,
        data: SampleInput,
        options: Sequence[str],
        kept: Mapping[str, str],
        captioned: Collection[str],
    ) -> InstructionSample:
        """``item + ' ' + caption`` for a kept caption; a rejected one adds nothing."""
        assert isinstance(data, list), "SR's input is a list of history items"
        items: list[object] = [
            with_caption(str(item), kept.get(f"history/{i}")) for i, item in enumerate(data)
        ]
        merged = [with_caption(opt, kept.get(f"option/{_letter(opt)}")) for opt in options]
        return InstructionSample(self.code, self.instruction, items, merged)

    def without_captions(
        self, sample: InstructionSample, kept: Mapping[str, str]
    ) -> InstructionSample:
        assert isinstance(sample.input, list)
        items: list[object] = [
            without_caption(str(item), kept.get(f"history/{i}"))
            for i, item in enumerate(sample.input)
        ]
        options = [
            without_caption(opt, kept.get(f"option/{_letter(opt)}")) for opt in sample.options
        ]
        return InstructionSample(sample.task, sample.instruction, items, options)


def _letter(option: str) -> str:
    return option.split(":", 1)[0].strip()


TASK = SequentialRecommendation()
