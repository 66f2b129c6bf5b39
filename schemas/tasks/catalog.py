"""The seven CASLIE task specs, with the prompt templates of the paper's Appendix B.

The template texts are verbatim from the reference; ``{{x}}`` slots of the reference are
written as ``{name}`` fields with the names in :data:`REFERENCE_SLOT_NAMES`. A test pins every
template against the reference text.
"""

from __future__ import annotations

from types import MappingProxyType

from schemas.tasks.spec import TaskCode, TaskSpec

#: Reference slot text -> our template field name.
REFERENCE_SLOT_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "question": "question",
        "review": "review",
        "caption": "caption",
        "title": "title",
        "options": "options",
        "title of the product": "title",
        "title of another product": "other_title",
        "caption of product 1": "caption",
        "query": "query",
        "title, category, brand": "item",
    }
)

_CAPTION_PREFIX = "Please generate an informative caption for the product in the image. "

SA_OPTIONS = (
    "A: very positive",
    "B: positive",
    "C: neutral",
    "D: negative",
    "E: very negative",
)
PRP_OPTIONS = (
    "A: Users who buy product 1 may also buy product 2.",
    "B: Users who view product 1 may also view product 2.",
    "C: The product 1 is similar with the product 2.",
)
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

AP = TaskSpec(
    code=TaskCode.AP,
    name="answerability prediction",
    input_fields=("question", "document"),
    options=(),
    answer_kind="binary",
    metric="f1_yes",
    caption_template=_CAPTION_PREFIX
    + "The caption should be helpful to identify if the product-related question: {question}, "
    "is answerable.",
    judge_template="The task needs to identify if the question is answerable based on the related "
    "document: {review}. Here is the additional information about the product that was extracted "
    "from the product image: {caption}. You need to determine if the information extracted from "
    "the image will help to identify the question's answerability. Only output yes or no.",
    instruction="Analyze the question and its supporting document, as well as the potential extra "
    "information about the products extracted from the product images, predict if the question is "
    "answerable based on the provided information. Output only yes or no.",
)

CC = TaskSpec(
    code=TaskCode.CC,
    name="category classification",
    input_fields=("title",),
    options=(),
    answer_kind="lettered",
    metric="recall_at_1",
    caption_template=_CAPTION_PREFIX
    + "Here is the product title: {title}. The caption should be helpful in identifying the "
    "product's fine-grained category.",
    judge_template="The task needs to identify the product's fine-grained category from the "
    "options: {options}. Here is the additional information about the product that was extracted "
    "from the product image: {caption}. You need to determine if the information extracted from "
    "the image will help to identify the category. Only output yes or no.",
    instruction="Analyze the product title, as well as the potential extra information about the "
    "products extracted from the product images, identify the product category from the given "
    "options. Only answer from the options.",
)

PRP = TaskSpec(
    code=TaskCode.PRP,
    name="product relation prediction",
    input_fields=("title1", "title2"),
    options=PRP_OPTIONS,
    answer_kind="lettered",
    metric="macro_f1",
    caption_template=_CAPTION_PREFIX
    + "The title of the product in the image is {title}. The caption should be helpful in "
    "predicting the relation between this product and {other_title}.",
    judge_template="The model needs to identify if the two products are similar or will be "
    "purchased together or be viewed together given the title of product 1: {title}, and product "
    "2: {other_title}. Here is the additional information about product 1 extracted from its "
    "image: {caption}, you need to determine if the information extracted from the image will be "
    "helpful in identifying the relation between the two products. Only output yes or no.",
    instruction="Given the title of two products, as well as the potential extra information "
    "about the products extracted from the product images, predict the relation of the two "
    "products. Only answer from the options.",
)

PSI = TaskSpec(
    code=TaskCode.PSI,
    name="product substitute identification",
    input_fields=("query", "title"),
    options=(),
    answer_kind="binary",
    metric="f1_yes",
    caption_template=_CAPTION_PREFIX
    + "The caption should be helpful to predict if the product: {title} can serve as a functional "
    "substitute for the user's query: {query}.",
    judge_template="The model needs to identify if the product is somewhat relevant to the query "
    "but fails to fulfill some aspects of the query but the product can be used as a functional "
    "substitute. Given a user's query: {query} and a product title: {title}, as well as additional "
    "information about the product extracted from the product image: {caption}, you need to "
    "determine if the information extracted from the image will be helpful in identifying the "
    "relevance between the product and the query. Only output yes or no.",
    instruction="Given a user's query and a product title, as well as the potential extra "
    "information about the product extracted from the product image, identify if the product is "
    "somewhat relevant to the query but fails to fulfill some aspects of the query but the product "
    "can be used as a functional substitute. Only output yes or no.",
)

MPC = TaskSpec(
    code=TaskCode.MPC,
    name="multi-class product classification",
    input_fields=("query", "title"),
    options=MPC_OPTIONS,
    answer_kind="lettered",
    metric="accuracy",
    caption_template=_CAPTION_PREFIX
    + "The caption should be helpful to predict the relevance between the user's query: {query}, "
    "and product: {title}.",
    judge_template="The model needs to predict the relevance between the query and product by "
    "analyzing the user's query: {query}, and product title: {title}. Here is the additional "
    "information about the product extracted from the product image: {caption}, you need to "
    "determine if the information extracted from the image will be helpful in predicting the "
    "result. Only output yes or no.",
    instruction="Predict the relevance between the query and product by analyzing the user's "
    "query, and product title, as well as the potential extra information about the product "
    "extracted from the product image. Output the option that best describes the relevance.",
)

SA = TaskSpec(
    code=TaskCode.SA,
    name="sentiment analysis",
    input_fields=("review",),
    options=SA_OPTIONS,
    answer_kind="lettered",
    metric="macro_f1",
    caption_template=_CAPTION_PREFIX
    + "The caption should be helpful to identify the user's sentiment from the review: {review}.",
    judge_template="The task needs to identify the user's sentiment based on their review: "
    "{review}. Here is the additional information about the product extracted from the user "
    "review's image: {caption}. You need to determine if the information extracted from the image "
    "will help to identify the user's sentiment. Only output yes or no.",
    instruction="Given the user's review, as well as the potential extra information about the "
    "products extracted from the user review's image, identify the user's sentiment. Only answer "
    "from the options.",
)

SR = TaskSpec(
    code=TaskCode.SR,
    name="sequential recommendation",
    input_fields=("history", "candidates"),
    options=(),
    answer_kind="lettered",
    metric="recall_at_1",
    caption_template=_CAPTION_PREFIX
    + "Here is the product title: {title}. The caption should be helpful in predicting the next "
    "product the user is most likely to purchase by analyzing the user's intent based on the "
    "user's purchase history.",
    judge_template="The task needs to recommend the next product that the user may be interested "
    "in based on the user's purchase history. Here is the title of a product from purchase "
    "history: {item}, and the information extracted from the product image: {caption}. You need "
    "to determine if the information extracted from the image will be helpful for recommendation. "
    "Only output yes or no.",
    instruction="Estimate the user's intent based on the user's purchase history, and predict the "
    "next product that the user is most likely to purchase from the given options.",
)

TASKS: MappingProxyType[TaskCode, TaskSpec] = MappingProxyType(
    {spec.code: spec for spec in (AP, CC, PRP, PSI, MPC, SA, SR)}
)


def get_task(code: str) -> TaskSpec:
    """Look a task up by its code (``"AP"`` ...); ``KeyError`` names the known codes."""
    try:
        return TASKS[TaskCode(code)]
    except ValueError:
        raise KeyError(f"unknown task {code!r}; known: {', '.join(TASKS)}") from None
