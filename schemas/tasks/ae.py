"""AE, attribute extraction (VIT-Pro): read a fixed set of attributes off the customer's photo
as a JSON object, ``"Unanswerable"`` where the image does not show a value.

The keys are the request's ``options`` (default :data:`DEFAULT_KEYS`; a query, or the
deployment through ``router.attribute_keys``, may name others). The predictor decodes under the
object's JSON schema, so every answer is valid JSON with exactly these keys. Metric: exact match
per attribute after normalising both sides (:func:`schemas.tasks.metrics.attribute_match`),
reported per key as well.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from pydantic import Field, field_validator

from schemas.base import ShortText
from schemas.events import Query
from schemas.records import TaskRequest
from schemas.tasks.answers import UNANSWERABLE
from schemas.tasks.claims import ClaimQuery, ClaimTask
from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.sample import InstructionSample

DEFAULT_KEYS = ("ProductType", "Brand", "Size", "Count", "Color", "TargetGender", "ExpiryDate")


class AEQuery(ClaimQuery):
    task: Literal["AE"]
    #: The attributes to read (default :data:`DEFAULT_KEYS`).
    keys: list[ShortText] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("keys")
    @classmethod
    def _distinct(cls, keys: list[str] | None) -> list[str] | None:
        if keys is not None and len(set(keys)) != len(keys):
            raise ValueError(f"attribute keys repeat: {keys}")
        return keys


def question_for(keys: Sequence[str]) -> str:
    return (
        f"What are the product's {', '.join(keys)}? Answer with a JSON object with exactly these "
        f'keys; write "{UNANSWERABLE}" for a value the image does not show.'
    )


class AttributeExtraction(ClaimTask):
    code = "AE"
    name = "attribute extraction"
    query_model = AEQuery
    input_fields = ("claim_id",)
    answer = "json"
    metric = "attribute_match"
    question = question_for(DEFAULT_KEYS)
    instruction = (
        "Instruction: extract the attributes of the product in the image. Use the image to answer."
    )
    caption_template = (
        CAPTION_PREFIX + "The caption should be helpful to read the product's attributes "
        "(brand, product type, size, count, colour, target gender, expiry date) from its "
        "package."
    )
    judge_template = (
        "The task needs to read the attributes of a product (brand, product type, size, count, "
        "colour, target gender, expiry date) from a customer's photo. Here is the information "
        "extracted from the photo: {caption}. You need to determine if the information "
        "extracted from the image will help to read these attributes. Only output yes or no."
    )

    def request_options(self, query: Query) -> list[str]:
        assert isinstance(query, AEQuery)
        return list(query.keys or DEFAULT_KEYS)

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        sample = super().assemble(request, kept, ocr, captioned)
        assert isinstance(sample.input, dict)
        sample.input["Question"] = question_for(request.options)
        return sample


TASK = AttributeExtraction()
