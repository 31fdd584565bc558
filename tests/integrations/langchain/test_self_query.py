"""The self-query translator: every comparator and operator, errors for the rest, and round trips
against the engine (the translated filter selects exactly the documents the structured query means)."""

from __future__ import annotations

import pytest
from langchain_core.structured_query import (
    Comparator,
    Comparison,
    Operation,
    Operator,
    StructuredQuery,
)

from langchain_pinecone_rag import PineconeTranslator, PineconeVectorStore

from .conftest import KeywordEmbeddings

T = PineconeTranslator()


def cmp(comparator: Comparator, attribute: str, value: object) -> Comparison:
    return Comparison(comparator=comparator, attribute=attribute, value=value)


def op(operator: Operator, *arguments: Comparison | Operation) -> Operation:
    return Operation(operator=operator, arguments=list(arguments))


@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [
        (Comparator.EQ, "drama", {"$eq": "drama"}),
        (Comparator.NE, "drama", {"$ne": "drama"}),
        (Comparator.GT, 2000, {"$gt": 2000}),
        (Comparator.GTE, 2000, {"$gte": 2000}),
        (Comparator.LT, 2000, {"$lt": 2000}),
        (Comparator.LTE, 2000, {"$lte": 2000}),
        (Comparator.IN, ["a", "b"], {"$in": ["a", "b"]}),
        (Comparator.NIN, ["a", "b"], {"$nin": ["a", "b"]}),
        (Comparator.IN, "a", {"$in": ["a"]}),
    ],
)
def test_every_comparator(comparator, value, expected) -> None:
    assert T.visit_comparison(cmp(comparator, "f", value)) == {"f": expected}


@pytest.mark.parametrize("comparator", [Comparator.CONTAIN, Comparator.LIKE])
def test_unsupported_comparators_are_named(comparator) -> None:
    with pytest.raises(ValueError, match=f"Comparator '{comparator.value}' cannot be expressed") as info:
        T.visit_comparison(cmp(comparator, "f", "x"))
    assert "eq, ne, gt, gte, lt, lte, in, nin" in str(info.value)


def test_and_or() -> None:
    a, b = cmp(Comparator.EQ, "g", "x"), cmp(Comparator.LT, "y", 3)
    assert T.visit_operation(op(Operator.AND, a, b)) == {"$and": [{"g": {"$eq": "x"}}, {"y": {"$lt": 3}}]}
    assert T.visit_operation(op(Operator.OR, a, b)) == {"$or": [{"g": {"$eq": "x"}}, {"y": {"$lt": 3}}]}


def test_not_is_rewritten() -> None:
    assert T.visit_operation(op(Operator.NOT, cmp(Comparator.EQ, "g", "x"))) == {"g": {"$ne": "x"}}
    assert T.visit_operation(op(Operator.NOT, cmp(Comparator.NIN, "g", ["x"]))) == {"g": {"$in": ["x"]}}
    nested = op(Operator.NOT, op(Operator.OR, cmp(Comparator.EQ, "g", "x"), cmp(Comparator.IN, "t", ["a"])))
    assert T.visit_operation(nested) == {"$and": [{"g": {"$ne": "x"}}, {"t": {"$nin": ["a"]}}]}
    several = op(Operator.NOT, cmp(Comparator.EQ, "a", 1), cmp(Comparator.NE, "b", 2))
    assert T.visit_operation(several) == {"$or": [{"a": {"$ne": 1}}, {"b": {"$eq": 2}}]}


def test_not_over_a_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not\(y \$gt"):
        T.visit_operation(op(Operator.NOT, cmp(Comparator.GT, "y", 3)))


def test_structured_query() -> None:
    query = StructuredQuery(query="space", filter=cmp(Comparator.EQ, "g", "sf"), limit=None)
    assert T.visit_structured_query(query) == ("space", {"filter": {"g": {"$eq": "sf"}}})
    assert T.visit_structured_query(StructuredQuery(query="space", filter=None, limit=None)) == ("space", {})


MOVIES = [
    {"genre": "drama", "year": 1994, "tags": ["classic", "prison"]},
    {"genre": "scifi", "year": 1999, "tags": ["classic", "simulation"]},
    {"genre": "scifi", "year": 2014, "tags": ["space"]},
    {"genre": "comedy", "year": 2004, "tags": ["office"]},
    {"genre": "drama", "year": 2019},
]


def expected(predicate) -> set[str]:
    return {str(i) for i, movie in enumerate(MOVIES) if predicate(movie)}


CASES = [
    (cmp(Comparator.EQ, "genre", "drama"), lambda m: m["genre"] == "drama"),
    (cmp(Comparator.NE, "genre", "drama"), lambda m: m["genre"] != "drama"),
    (cmp(Comparator.GT, "year", 2004), lambda m: m["year"] > 2004),
    (cmp(Comparator.GTE, "year", 2004), lambda m: m["year"] >= 2004),
    (cmp(Comparator.LT, "year", 1999), lambda m: m["year"] < 1999),
    (cmp(Comparator.LTE, "year", 1999), lambda m: m["year"] <= 1999),
    (cmp(Comparator.IN, "genre", ["comedy", "scifi"]), lambda m: m["genre"] in ("comedy", "scifi")),
    (cmp(Comparator.NIN, "genre", ["comedy", "scifi"]), lambda m: m["genre"] not in ("comedy", "scifi")),
    (cmp(Comparator.EQ, "tags", "classic"), lambda m: "classic" in m.get("tags", [])),
    (
        op(Operator.AND, cmp(Comparator.EQ, "genre", "scifi"), cmp(Comparator.GT, "year", 2000)),
        lambda m: m["genre"] == "scifi" and m["year"] > 2000,
    ),
    (
        op(Operator.OR, cmp(Comparator.EQ, "genre", "comedy"), cmp(Comparator.LT, "year", 1995)),
        lambda m: m["genre"] == "comedy" or m["year"] < 1995,
    ),
    (
        op(
            Operator.NOT,
            op(Operator.OR, cmp(Comparator.EQ, "genre", "drama"), cmp(Comparator.IN, "tags", ["space"])),
        ),
        lambda m: not (m["genre"] == "drama" or "space" in m.get("tags", [])),
    ),
]


@pytest.fixture(scope="module")
def movies(pc, server) -> PineconeVectorStore:
    embeddings = KeywordEmbeddings()
    name = f"sq-{id(embeddings):x}"
    pc.create_index(name, dimension=embeddings.dimension)
    store = PineconeVectorStore(embedding=embeddings, client=pc, index_name=name)
    store.add_texts(
        [f"movie {i}" for i in range(len(MOVIES))], MOVIES, ids=[str(i) for i in range(len(MOVIES))]
    )
    yield store
    pc.delete_index(name)


@pytest.mark.parametrize(("structured", "predicate"), CASES)
def test_round_trip_against_the_engine(movies, structured, predicate) -> None:
    query, kwargs = T.visit_structured_query(StructuredQuery(query="movie", filter=structured, limit=None))
    found = {doc.id for doc in movies.similarity_search(query, k=10, **kwargs)}
    assert found == expected(predicate)
    assert found  # every case selects something, so an always-empty filter cannot pass
