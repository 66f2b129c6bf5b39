"""PSI, product substitute identification: can the product serve as a functional substitute
for what the query asks for? Answers yes/no; binary F1."""

from __future__ import annotations

from typing import Literal

from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.relevance import QueryProductTask, RelevanceQuery


class PSIQuery(RelevanceQuery):
    """Can the product substitute for what ``query`` asks for?"""

    task: Literal["PSI"]


class SubstituteIdentification(QueryProductTask):
    code = "PSI"
    name = "product substitute identification"
    query_model = PSIQuery
    answer = "binary"
    metric = "f1_yes"
    caption_template = (
        CAPTION_PREFIX + "The caption should be helpful to predict if the product: {title} can "
        "serve as a functional substitute for the user's query: {query}."
    )
    judge_template = (
        "The model needs to identify if the product is somewhat relevant to the query but fails "
        "to fulfill some aspects of the query but the product can be used as a functional "
        "substitute. Given a user's query: {query} and a product title: {title}, as well as "
        "additional information about the product extracted from the product image: {caption}, "
        "you need to determine if the information extracted from the image will be helpful in "
        "identifying the relevance between the product and the query. Only output yes or no."
    )
    instruction = (
        "Given a user's query and a product title, as well as the potential extra information "
        "about the product extracted from the product image, identify if the product is "
        "somewhat relevant to the query but fails to fulfill some aspects of the query but the "
        "product can be used as a functional substitute. Only output yes or no."
    )


TASK = SubstituteIdentification()
