"""CC, category classification: the product's fine-grained category among the query's options
(or, automatically, among a new catalog product's ``category_options``). Recall@1."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

from pydantic import Field

from schemas.base import Identifier, ShortText
from schemas.events import ProductEvent, Query
from schemas.records import TaskRequest
from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.resolving import Tables, image_slot, new_request, products_of
from schemas.tasks.sample import InstructionSample
from schemas.tasks.spec import Task, letter_options


class CCQuery(Query):
    """Category classification among ``options``."""

    task: Literal["CC"]
    product_id: Identifier
    options: list[ShortText] = Field(min_length=2, max_length=20)


class CategoryClassification(Task):
    code = "CC"
    name = "category classification"
    query_model = CCQuery
    input_fields = ("title",)
    answer = "lettered"
    metric = "recall_at_1"
    caption_template = (
        CAPTION_PREFIX + "Here is the product title: {title}. The caption should be helpful in "
        "identifying the product's fine-grained category."
    )
    judge_template = (
        "The task needs to identify the product's fine-grained category from the options: "
        "{options}. Here is the additional information about the product that was extracted "
        "from the product image: {caption}. You need to determine if the information extracted "
        "from the image will help to identify the category. Only output yes or no."
    )
    instruction = (
        "Analyze the product title, as well as the potential extra information about the "
        "products extracted from the product images, identify the product category from the "
        "given options. Only answer from the options."
    )

    def _request(
        self, query: Query | None, request_id: str, product: ProductEvent, texts: list[str]
    ) -> TaskRequest:
        options = letter_options(texts)
        return new_request(
            query,
            request_id,
            self.code,
            inputs={"title": product.title},
            options=options,
            slots=image_slot(
                "product", product, {"title": product.title}, {"options": ", ".join(options)}
            ),
        )

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        assert isinstance(query, CCQuery)
        product = products_of([query.product_id], tables)[query.product_id]
        return self._request(query, query.request_id, product, list(query.options))

    def for_product(self, product: ProductEvent) -> TaskRequest | None:
        if not product.category_options:
            return None
        return self._request(
            None, f"auto-cc:{product.product_id}", product, list(product.category_options)
        )

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        data: dict[str, object] = {"title": request.inputs["title"]}
        return self.with_captions(data, request.options, kept, captioned)


TASK = CategoryClassification()
