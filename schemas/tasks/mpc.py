"""MPC, multi-class product classification: the ESCI relevance of a product to a query
(exact, substitute, complement, irrelevant as options A-D). Accuracy."""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from schemas.tasks.prompts import CAPTION_PREFIX
from schemas.tasks.relevance import QueryProductTask, RelevanceQuery

MPC_OPTIONS = (
    "A: The product is relevant to the query, and satisfies all the query specifications.",
    "B: The product is somewhat relevant. It fails to fulfill some aspects of the query but the "
    "product can be used as a functional substitute.",
    "C: The product does not fulfill the query, but could be used in combination with a product "
    "exactly matching the query.",
    "D: The product is irrelevant to the query.",
)
#: ESCI relevance labels -> MPC option letters.
ESCI_TO_LETTER = MappingProxyType({"E": "A", "S": "B", "C": "C", "I": "D"})


class MPCQuery(RelevanceQuery):
    """ESCI relevance of the product to ``query``."""

    task: Literal["MPC"]


class ProductClassification(QueryProductTask):
    code = "MPC"
    name = "multi-class product classification"
    query_model = MPCQuery
    answer = "lettered"
    metric = "accuracy"
    options = MPC_OPTIONS
    caption_template = (
        CAPTION_PREFIX + "The caption should be helpful to predict the relevance between the "
        "user's query: {query}, and product: {title}."
    )
    judge_template = (
        "The model needs to predict the relevance between the query and product by analyzing "
        "the user's query: {query}, and product title: {title}. Here is the additional "
        "information about the product extracted from the product image: {caption}, you need to "
        "determine if the information extracted from the image will be helpful in predicting "
        "the result. Only output yes or no."
    )
    instruction = (
        "Predict the relevance between the query and product by analyzing the user's query, and "
        "product title, as well as the potential extra information about the product extracted "
        "from the product image. Output the option that best describes the relevance."
    )


TASK = ProductClassification()
