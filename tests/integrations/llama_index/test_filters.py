"""Every FilterOperator, AND/OR/NOT and nesting, checked against LlamaIndex's reference semantics.

The expected ids come from llama-index-core's own ``build_metadata_filter_fn`` (what ``SimpleVectorStore``
and ``test_metadata_filters_logic.py`` use) over the original node metadata, None values and empty lists
included; the reference does not nest, so groups are combined here with its rules (AND: all, OR: any,
NOT: none). The store's answer comes from the local engine, through query and through get_nodes.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from llama_index.vector_stores.pinecone_rag import UnsupportedFilterError, to_pinecone_filter

from .support import bag_of_words

RECORDS: dict[str, dict[str, Any]] = {
    "r1": {"author": "alice", "year": 2001, "rating": 4.5, "tags": ["python", "db"], "note": "x"},
    "r2": {"author": "bob", "year": 2010, "rating": 3.0, "tags": ["python"], "note": ""},
    "r3": {"author": "carol", "year": 2020, "tags": ["rust", "db", "web"], "note": None},
    "r4": {"author": "alice", "rating": 5.0, "tags": []},
    "r5": {"year": 1999},
    "r6": {"author": "dave", "year": 2015, "rating": 2, "tags": ["web"], "note": "y"},
}

Op = FilterOperator


def f(key: str, op: FilterOperator, value: Any = None) -> MetadataFilter:
    return MetadataFilter(key=key, operator=op, value=value)


def group(*items: MetadataFilter | MetadataFilters, condition: str | None = "and") -> MetadataFilters:
    cond = None if condition is None else FilterCondition(condition)
    return MetadataFilters(filters=list(items), condition=cond)


CASES: dict[str, MetadataFilters] = {
    "eq-str": group(f("author", Op.EQ, "alice")),
    "eq-int-vs-float": group(f("rating", Op.EQ, 2)),
    "ne-missing-matches": group(f("author", Op.NE, "alice")),
    "gt": group(f("year", Op.GT, 2005)),
    "gte": group(f("year", Op.GTE, 2010)),
    "lt": group(f("year", Op.LT, 2010)),
    "lte-float": group(f("rating", Op.LTE, 3)),
    "in": group(f("author", Op.IN, ["alice", "carol"])),
    "in-numbers": group(f("year", Op.IN, [1999, 2020])),
    "in-empty": group(f("author", Op.IN, [])),
    "nin-missing-matches": group(f("author", Op.NIN, ["alice"])),
    "nin-empty": group(f("author", Op.NIN, [])),
    "any": group(f("tags", Op.ANY, ["rust", "python"])),
    "any-empty": group(f("tags", Op.ANY, [])),
    "all": group(f("tags", Op.ALL, ["python", "db"])),
    "contains": group(f("tags", Op.CONTAINS, "db")),
    "is-empty-string-none-missing": group(f("note", Op.IS_EMPTY)),
    "is-empty-list": group(f("tags", Op.IS_EMPTY)),
    "condition-none-is-and": group(f("author", Op.EQ, "alice"), f("rating", Op.GT, 4.8), condition=None),
    "and": group(f("tags", Op.CONTAINS, "python"), f("year", Op.GTE, 2005)),
    "or": group(f("author", Op.EQ, "dave"), f("year", Op.LT, 2000), condition="or"),
    "not-eq": group(f("author", Op.EQ, "alice"), condition="not"),
    "not-ne": group(f("author", Op.NE, "alice"), condition="not"),
    "not-gt-keeps-missing": group(f("year", Op.GT, 2005), condition="not"),
    "not-lte": group(f("rating", Op.LTE, 3), condition="not"),
    "not-in": group(f("author", Op.IN, ["alice", "bob"]), condition="not"),
    "not-nin": group(f("author", Op.NIN, ["alice", "bob"]), condition="not"),
    "not-any": group(f("tags", Op.ANY, ["db"]), condition="not"),
    "not-all": group(f("tags", Op.ALL, ["python", "db"]), condition="not"),
    "not-contains": group(f("tags", Op.CONTAINS, "web"), condition="not"),
    "not-is-empty": group(f("note", Op.IS_EMPTY), condition="not"),
    "not-several-is-none-of": group(f("author", Op.EQ, "alice"), f("year", Op.GT, 2005), condition="not"),
    "nested-and-or-not": group(
        group(f("author", Op.EQ, "alice"), f("author", Op.EQ, "bob"), condition="or"),
        group(f("tags", Op.CONTAINS, "db"), condition="not"),
    ),
    "nested-or-of-and": group(
        group(f("year", Op.GT, 2000), f("year", Op.LT, 2012)),
        f("tags", Op.IS_EMPTY),
        condition="or",
    ),
    "nested-not-of-or-of-not": group(
        group(
            f("author", Op.EQ, "alice"),
            group(f("year", Op.GT, 2012), condition="not"),
            condition="or",
        ),
        condition="not",
    ),
    "nested-not-of-and": group(
        group(f("author", Op.EQ, "alice"), f("rating", Op.GTE, 4.5)),
        condition="not",
    ),
    "nested-empty-group": group(group(), f("author", Op.EQ, "bob")),
}


def reference(filters: MetadataFilters, metadata: dict[str, Any]) -> bool:
    """LlamaIndex's reference semantics, with nested groups combined by the same rules."""
    results = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            results.append(reference(item, metadata))
        else:
            results.append(build_metadata_filter_fn(lambda _: metadata, MetadataFilters(filters=[item]))("x"))
    if not results:
        return True
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return all(results)
    if condition == FilterCondition.OR:
        return any(results)
    return not any(results)


async def seed(h) -> None:
    nodes = [TextNode(id_=rid, text=f"record {rid}", metadata=md) for rid, md in RECORDS.items()]
    for node in nodes:
        node.embedding = bag_of_words(node.text)
    await h.add(nodes)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(CASES))
async def test_operator_matches_reference(make_store, name: str) -> None:
    filters = CASES[name]
    expected = sorted(rid for rid, md in RECORDS.items() if reference(filters, md))
    h = await make_store()
    await seed(h)
    query = VectorStoreQuery(query_embedding=bag_of_words("record"), similarity_top_k=50, filters=filters)
    assert sorted((await h.query(query)).ids or []) == expected
    assert sorted(n.node_id for n in await h.get_nodes(filters=filters)) == expected


def test_cases_are_not_trivial() -> None:
    """Each case must separate the records; a case that matches all or none would prove little."""
    trivial = {"in-empty", "any-empty", "nin-empty"}
    for name, filters in CASES.items():
        matched = sum(reference(filters, md) for md in RECORDS.values())
        assert name in trivial or 0 < matched < len(RECORDS), name


@pytest.mark.parametrize("op", [Op.TEXT_MATCH, Op.TEXT_MATCH_INSENSITIVE])
@pytest.mark.parametrize("condition", ["and", "not"])
@pytest.mark.asyncio
async def test_text_match_raises_naming_the_operator(make_store, op: FilterOperator, condition: str) -> None:
    h = await make_store()
    filters = group(f("author", op, "ali"), condition=condition)
    with pytest.raises(UnsupportedFilterError, match=op.name):
        await h.query(VectorStoreQuery(query_embedding=bag_of_words("x"), filters=filters))


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (f("year", Op.GT, "2005"), "compares numbers only"),
        (f("author", Op.EQ, ["alice"]), "use IN, ANY or ALL"),
        (f("author", Op.IN, "alice"), "needs a list"),
        (f("author", Op.EQ, None), "needs a string or a number"),
    ],
)
def test_wrong_operand_shapes_raise(item: MetadataFilter, message: str) -> None:
    with pytest.raises(UnsupportedFilterError, match=message):
        to_pinecone_filter(group(item))


def test_translation_shapes() -> None:
    assert to_pinecone_filter(None) is True
    assert to_pinecone_filter(group()) is True
    assert to_pinecone_filter(group(f("a", Op.IN, []))) is False
    assert to_pinecone_filter(group(f("a", Op.EQ, 1), condition="not")) == {"a": {"$ne": 1}}
    assert to_pinecone_filter(group(f("a", Op.GT, 1), condition="not")) == {
        "$or": [{"a": {"$exists": False}}, {"a": {"$lte": 1}}]
    }
