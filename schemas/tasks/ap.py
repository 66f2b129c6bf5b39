"""AP, answerability prediction: is a product question answerable from a document about the
product (the query's own, or the product's recent reviews)? Answers yes/no; binary F1."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

from schemas.base import Identifier, LongText, ShortText
from schemas.events import Query
from schemas.records import TaskRequest
from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.resolving import MissingData, Tables, image_slot, new_request, products_of
from schemas.tasks.sample import InstructionSample
from schemas.tasks.spec import Task


class APQuery(Query):
    """Answerability: is ``question`` answerable from a document about the product?"""

    task: Literal["AP"]
    product_id: Identifier
    question: ShortText
    #: Supporting document; when absent the router joins the product's recent reviews.
    document: LongText | None = None


class Answerability(Task):
    code = "AP"
    name = "answerability prediction"
    query_model = APQuery
    input_fields = ("question", "document")
    answer = "binary"
    metric = "f1_yes"
    caption_template = (
        CAPTION_PREFIX + "The caption should be helpful to identify if the product-related "
        "question: {question}, is answerable."
    )
    judge_template = (
        "The task needs to identify if the question is answerable based on the related "
        "document: {review}. Here is the additional information about the product that was "
        "extracted from the product image: {caption}. You need to determine if the information "
        "extracted from the image will help to identify the question's answerability. Only "
        "output yes or no."
    )
    instruction = (
        "Analyze the question and its supporting document, as well as the potential extra "
        "information about the products extracted from the product images, predict if the "
        "question is answerable based on the provided information. Output only yes or no."
    )

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        assert isinstance(query, APQuery)
        product = products_of([query.product_id], tables)[query.product_id]
        document = query.document
        if document is None:
            recent = tables.reviews_of(query.product_id)
            if not recent:
                raise MissingData(f"no document given and no reviews of {query.product_id}")
            document = "\n".join(r.text for r in recent)
        return new_request(
            query,
            query.request_id,
            self.code,
            inputs={"question": query.question, "document": document},
            slots=image_slot(
                "product", product, {"question": query.question}, {"review": document}
            ),
        )

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        data: dict[str, object] = {
            "question": request.inputs["question"],
            "document": request.inputs["document"],
        }
        return self.with_captions(data, [], kept, captioned)


TASK = Answerability()
