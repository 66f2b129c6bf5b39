"""PRP, product relation prediction: bought together, viewed together, or similar, for
product 1 (``product_id``) and product 2 (``other_product_id``). Macro-F1."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from schemas.base import Identifier
from schemas.events import Query
from schemas.records import TaskRequest
from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.resolving import Tables, image_slot, new_request, products_of
from schemas.tasks.sample import InstructionSample, SampleInput
from schemas.tasks.spec import Task

PRP_OPTIONS = (
    "A: Users who buy product 1 may also buy product 2.",
    "B: Users who view product 1 may also view product 2.",
    "C: The product 1 is similar with the product 2.",
)


class PRPQuery(Query):
    """Product relation between ``product_id`` (product 1) and ``other_product_id``."""

    task: Literal["PRP"]
    product_id: Identifier
    other_product_id: Identifier


class ProductRelation(Task):
    code = "PRP"
    name = "product relation prediction"
    query_model = PRPQuery
    input_fields = ("title1", "title2")
    answer = "lettered"
    metric = "macro_f1"
    options = PRP_OPTIONS
    caption_keys = (
        "product 1 information extracted from image",
        "product 2 information extracted from image",
    )
    caption_template = (
        CAPTION_PREFIX + "The title of the product in the image is {title}. The caption should "
        "be helpful in predicting the relation between this product and {other_title}."
    )
    #: The paper's CQE text with the judged product's number a field: each product's caption
    #: is judged with the titles in input order (product 1, product 2), as the authors do.
    judge_template = (
        "The model needs to identify if the two products are similar or will be purchased "
        "together or be viewed together given the title of product 1: {title1}, and product 2: "
        "{title2}. Here is the additional information about product {number} extracted from its "
        "image: {caption}, you need to determine if the information extracted from the image "
        "will be helpful in identifying the relation between the two products. Only output yes "
        "or no."
    )
    instruction = (
        "Given the title of two products, as well as the potential extra information about the "
        "products extracted from the product images, predict the relation of the two products. "
        "Only answer from the options."
    )

    def product_ids(self, query: Query) -> list[str]:
        assert isinstance(query, PRPQuery)
        return list(dict.fromkeys([query.product_id, query.other_product_id]))

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        assert isinstance(query, PRPQuery)
        found = products_of(self.product_ids(query), tables)
        p1, p2 = found[query.product_id], found[query.other_product_id]
        # the caption prompt is about the image's product ("this product" vs the other one);
        # the judge sees both titles in input order and the number of the judged product
        titles = {"title1": p1.title, "title2": p2.title}
        caption1 = {"title": p1.title, "other_title": p2.title}
        caption2 = {"title": p2.title, "other_title": p1.title}
        return new_request(
            query,
            query.request_id,
            self.code,
            inputs={"title1": p1.title, "title2": p2.title},
            options=list(PRP_OPTIONS),
            slots=image_slot("product1", p1, caption1, {**titles, "number": "1"})
            + image_slot("product2", p2, caption2, {**titles, "number": "2"}),
        )

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        data: dict[str, object] = {
            "product 1": request.inputs["title1"],
            "product 2": request.inputs["title2"],
        }
        return self.with_captions(data, request.options, kept, captioned)

    def caption_slots(self, data: SampleInput, options: Sequence[str]) -> list[str]:
        return ["product1", "product2"]


TASK = ProductRelation()
