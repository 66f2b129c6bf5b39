"""SA, sentiment analysis of a review (inline in the query, by ``review_id``, or
automatically for every new review), five options; macro-F1."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from pydantic import Field, model_validator

from schemas.base import Identifier, LongText
from schemas.events import Query, ReviewEvent
from schemas.images import ImageRef
from schemas.records import TaskRequest
from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.resolving import MissingData, Tables, new_request, slot_for
from schemas.tasks.sample import InstructionSample, SampleInput
from schemas.tasks.spec import Task

SA_OPTIONS = (
    "A: very positive",
    "B: positive",
    "C: neutral",
    "D: negative",
    "E: very negative",
)


class SAQuery(Query):
    """Sentiment of a review: inline (``review`` + ``images``) or by ``review_id``."""

    task: Literal["SA"]
    review: LongText | None = None
    images: list[ImageRef] = Field(default_factory=list, max_length=16)
    review_id: Identifier | None = None
    #: Needed with ``review_id``: the product whose recent reviews hold it.
    product_id: Identifier | None = None

    @model_validator(mode="after")
    def _review_given(self) -> SAQuery:
        if self.review is None and (self.review_id is None or self.product_id is None):
            raise ValueError("SA query needs 'review' text, or 'review_id' with 'product_id'")
        return self


class SentimentAnalysis(Task):
    code = "SA"
    name = "sentiment analysis"
    query_model = SAQuery
    input_fields = ("review",)
    answer = "lettered"
    metric = "macro_f1"
    options = SA_OPTIONS
    caption_template = (
        CAPTION_PREFIX
        + "The caption should be helpful to identify the user's sentiment from the review: "
        "{review}."
    )
    judge_template = (
        "The task needs to identify the user's sentiment based on their review: {review}. Here "
        "is the additional information about the product extracted from the user review's "
        "image: {caption}. You need to determine if the information extracted from the image "
        "will help to identify the user's sentiment. Only output yes or no."
    )
    instruction = (
        "Given the user's review, as well as the potential extra information about the products "
        "extracted from the user review's image, identify the user's sentiment. Only answer "
        "from the options."
    )

    def product_ids(self, query: Query) -> list[str]:
        assert isinstance(query, SAQuery)
        return [query.product_id] if query.product_id and query.review is None else []

    def _request(
        self, query: Query | None, request_id: str, text: str, images: list[ImageRef]
    ) -> TaskRequest:
        both = {"review": text}
        return new_request(
            query,
            request_id,
            self.code,
            inputs={"review": text},
            options=list(SA_OPTIONS),
            slots=slot_for("review", images[0] if images else None, both, both),
        )

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        assert isinstance(query, SAQuery)
        text, images = query.review, list(query.images)
        if text is None:
            assert query.product_id is not None and query.review_id is not None
            found = [
                r for r in tables.reviews_of(query.product_id) if r.review_id == query.review_id
            ]
            if not found:
                raise MissingData(f"review {query.review_id} of {query.product_id} not known")
            text, images = found[-1].text, list(found[-1].images)
        return self._request(query, query.request_id, text, images)

    def for_review(self, review: ReviewEvent) -> TaskRequest | None:
        return self._request(None, f"auto-sa:{review.review_id}", review.text, list(review.images))

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        data: dict[str, object] = {"review": request.inputs["review"]}
        return self.with_captions(data, request.options, kept, captioned)

    def caption_slots(self, data: SampleInput, options: Sequence[str]) -> list[str]:
        return ["review"]


TASK = SentimentAnalysis()
