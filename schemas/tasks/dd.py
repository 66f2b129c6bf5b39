"""DD, damage / defect detection (VIT-Pro): is the product in the customer's photo(s)
damaged or defective? Answers yes/no; accuracy (balanced data)."""

from __future__ import annotations

from typing import Literal

from schemas.records import TaskRequest
from schemas.tasks.claims import ClaimQuery, ClaimTask
from schemas.tasks.prompts import CAPTION_PREFIX


class DDQuery(ClaimQuery):
    task: Literal["DD"]


class DamageDetection(ClaimTask):
    code = "DD"
    name = "damage detection"
    query_model = DDQuery
    input_fields = ("claim_text",)
    answer = "binary"
    metric = "accuracy"
    question = "Is there a damage on the product in the image?"
    caption_template = (
        CAPTION_PREFIX + "The caption should be helpful to identify if the product or its "
        "package in the image is damaged or defective. Here is the customer's claim: {claim}."
    )
    judge_template = (
        "The task needs to identify if the product in a customer's photo is damaged or "
        "defective, given the customer's claim: {claim}. Here is the additional information "
        "about the product extracted from the photo: {caption}. You need to determine if the "
        "information extracted from the image will help to identify damage or defects. Only "
        "output yes or no."
    )

    def context(self, request: TaskRequest) -> dict[str, str]:
        return {"Customer text": str(request.inputs["claim_text"])}


TASK = DamageDetection()
