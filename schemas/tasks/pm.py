"""PM, product matching (VIT-Pro): does the product in the customer's photo match the
listing's title and description? The listing's catalog image comes along as a numbered
reference image (its caption and OCR tokens). Answers yes/no; accuracy (balanced data)."""

from __future__ import annotations

from typing import Literal

from schemas.records import TaskRequest
from schemas.tasks.claims import ClaimQuery, ClaimTask
from schemas.tasks.prompts import CAPTION_PREFIX


class PMQuery(ClaimQuery):
    task: Literal["PM"]


class ProductMatching(ClaimTask):
    code = "PM"
    name = "product matching"
    query_model = PMQuery
    input_fields = ("listing",)
    answer = "binary"
    metric = "accuracy"
    reference_image = True
    question = "Does the image match to the product description?"
    caption_template = (
        CAPTION_PREFIX + "The caption should be helpful to identify if the product in the image "
        "matches the listing: {title}."
    )
    judge_template = (
        "The task needs to identify if the product in a customer's photo matches the listing: "
        "{title}. Here is the additional information about the product extracted from the "
        "photo: {caption}. You need to determine if the information extracted from the image "
        "will help to decide whether the product matches the listing. Only output yes or no."
    )

    def context(self, request: TaskRequest) -> dict[str, str]:
        return {"Product Description": str(request.inputs["listing"])}


TASK = ProductMatching()
