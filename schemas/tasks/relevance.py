"""What PSI and MPC share: a user's search query against one product title."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from schemas.base import Identifier, ShortText
from schemas.events import Query
from schemas.records import TaskRequest
from schemas.tasks.resolving import Tables, image_slot, new_request, products_of
from schemas.tasks.sample import InstructionSample
from schemas.tasks.spec import Task


class RelevanceQuery(Query):
    product_id: Identifier
    query: ShortText


class QueryProductTask(Task):
    """A task over (search query, product title); the image slot is the product's."""

    input_fields = ("query", "title")

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        assert isinstance(query, RelevanceQuery)
        product = products_of([query.product_id], tables)[query.product_id]
        both = {"title": product.title, "query": query.query}
        return new_request(
            query,
            query.request_id,
            self.code,
            inputs={"query": query.query, "title": product.title},
            options=list(self.options),
            slots=image_slot("product", product, both, both),
        )

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        data: dict[str, object] = {
            "query": request.inputs["query"],
            "product title": request.inputs["title"],
        }
        return self.with_captions(data, request.options, kept, captioned)
