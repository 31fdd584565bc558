"""Fuzzing the REST API: every data-plane and control-plane route, random and mutated valid bodies.

Every answer must be a success or a proper 4xx (501 for the routes the engine documents as unsupported),
never a 5xx; no request may hang (client timeout); the server must answer normally afterwards.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from .strategies import bodies, dumps, json_values, mutated
from .support import FUZZ, TALLY

if TYPE_CHECKING:
    import httpx

    from .support import FuzzTarget

ALLOWED = {200, 201, 202, 307, 400, 401, 403, 404, 405, 409, 412, 413, 422, 429}
PROTECTED = {"dense", "sparse", "docs"}  # the fixture's indexes: fuzzing must not delete them

VECTOR = {
    "id": "v1",
    "values": [0.1, 0.2, 0.3, 0.4],
    "metadata": {"genre": "drama", "year": 2020, "tags": ["a"]},
}
SPARSE = {"indices": [1, 5, 9], "values": [0.5, 0.1, 0.2]}
FILTER = {"$and": [{"genre": {"$in": ["drama", "comedy"]}}, {"year": {"$gte": 2000}}]}
DATA_ROUTES: list[tuple[str, str, list[Any]]] = [
    (
        "POST",
        "/vectors/upsert",
        [
            {"vectors": [VECTOR], "namespace": "ns"},
            {"vectors": [{"id": "s1", "sparseValues": SPARSE}]},
            {
                "vectors": [
                    {"id": "h1", "values": [1, 0, 0, 0], "sparse_values": SPARSE, "metadata": {"k": "v"}}
                ]
            },
        ],
    ),
    (
        "POST",
        "/query",
        [
            {
                "vector": [0.1, 0.2, 0.3, 0.4],
                "topK": 3,
                "filter": FILTER,
                "includeMetadata": True,
                "namespace": "ns",
            },
            {"id": "v1", "topK": 2, "includeValues": True},
            {"sparseVector": SPARSE, "topK": 5},
            {"vector": [1, 0, 0, 0], "sparse_vector": SPARSE, "top_k": 1, "filter": {"genre": "drama"}},
        ],
    ),
    ("POST", "/vectors/fetch_by_metadata", [{"namespace": "ns", "filter": FILTER, "limit": 10}]),
    (
        "POST",
        "/vectors/update",
        [
            {"id": "v1", "values": [1, 1, 1, 1], "setMetadata": {"genre": "comedy"}, "namespace": "ns"},
            {"filter": {"genre": {"$eq": "drama"}}, "setMetadata": {"seen": True}, "dryRun": True},
        ],
    ),
    (
        "POST",
        "/vectors/delete",
        [
            {"ids": ["v9", "v8"], "namespace": "ns"},
            {"filter": {"year": {"$lt": 1900}}},
            {"deleteAll": True, "namespace": "scratch"},
        ],
    ),
    ("POST", "/describe_index_stats", [{"filter": FILTER}, {}]),
    ("POST", "/namespaces", [{"name": "created", "schema": {"fields": {"genre": {"filterable": True}}}}]),
]
GET_ROUTES: list[tuple[str, list[str]]] = [
    ("/vectors/fetch", ["ids", "namespace"]),
    ("/vectors/list", ["namespace", "prefix", "limit", "paginationToken", "pagination_token"]),
    ("/namespaces", ["prefix", "limit", "paginationToken"]),
    ("/describe_index_stats", []),
]
RECORD = {"_id": "d1", "text": "a passage about cats", "genre": "pets"}
SEARCH = [
    {"query": {"inputs": {"text": "cats"}, "top_k": 3, "filter": {"genre": "pets"}}, "fields": ["text"]},
    {
        "query": {"id": "d1", "top_k": 2},
        "rerank": {"model": "pinecone-rag-bm25-rerank", "rank_fields": ["text"]},
    },
    {"query": {"vector": {"values": [0.1, 0.2, 0.3, 0.4]}, "top_k": 1}},
]


def check(response: httpx.Response, what: object) -> None:
    TALLY.note(f"HTTP {response.status_code}")
    assert response.status_code in ALLOWED or (response.status_code == 501), (
        what,
        response.status_code,
        response.text[:500],
    )
    if response.headers.get("content-type", "").startswith("application/json") and response.content:
        json.loads(response.content)  # well-formed even when it is an error


@given(
    index=st.sampled_from(["dense", "sparse", "docs"]),
    route=st.sampled_from(DATA_ROUTES).flatmap(
        lambda r: st.tuples(st.just(r[0]), st.just(r[1]), bodies(r[2]))
    ),
)
@FUZZ
def test_fuzz_data_plane_json_bodies(target: FuzzTarget, index: str, route: tuple[str, str, bytes]) -> None:
    method, path, body = route
    data = target.data(index)
    check(
        data.request(method, path, content=body, headers={"Content-Type": "application/json"}),
        (path, body[:300]),
    )


_params = st.lists(
    st.tuples(
        st.sampled_from(["ids", "namespace", "prefix", "limit", "paginationToken", "x"]), st.text(max_size=30)
    ),
    max_size=8,
)


@given(
    index=st.sampled_from(["dense", "sparse", "docs"]),
    route=st.sampled_from(GET_ROUTES),
    params=_params,
    namespace=st.text(max_size=40) | st.sampled_from(["ns", "../x", "%2e%2e/x", "__default__"]),
    records=st.lists(st.just(RECORD).flatmap(mutated) | json_values, max_size=4),
    raw=st.binary(max_size=100),
    search=st.sampled_from(SEARCH).flatmap(mutated),
    choice=st.integers(0, 4),
)
@FUZZ
def test_fuzz_data_plane_queries_paths_and_records(
    target: FuzzTarget,
    index: str,
    route: tuple[str, list[str]],
    params: list[tuple[str, str]],
    namespace: str,
    records: list[Any],
    raw: bytes,
    search: Any,
    choice: int,
) -> None:
    quoted = quote(namespace, safe="")
    data = target.data(index)
    if choice == 0:
        response = data.get(route[0], params=params)
    elif choice == 1:
        response = data.request(["GET", "DELETE"][len(namespace) % 2], f"/namespaces/{quoted}")
    elif choice == 2:
        lines = b"\n".join(dumps(record) for record in records) + b"\n" + raw
        response = data.post(f"/records/namespaces/{quoted}/upsert", content=lines)
    elif choice == 3:
        response = data.post(f"/records/namespaces/{quoted}/search", content=dumps(search))
    else:
        response = data.post(f"/records/namespaces/{quoted}/search", content=raw)
    check(response, (choice, route, params, namespace))


CREATE = [
    {
        "name": "fz",
        "dimension": 8,
        "metric": "euclidean",
        "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
    },
    {
        "name": "fz",
        "vector_type": "sparse",
        "metric": "dotproduct",
        "spec": {"pod": {"environment": "us-east-1-aws"}},
        "tags": {"team": "a"},
        "deletion_protection": "disabled",
    },
]
CREATE_2026 = [{"name": "fz", "schema": {"fields": {"_values": {"dimension": 4, "metric": "cosine"}}}}]
FOR_MODEL = [
    {
        "name": "fz",
        "cloud": "aws",
        "region": "us-east-1",
        "embed": {
            "model": "pinecone-rag-bm25",
            "field_map": {"text": "text"},
            "write_parameters": {"truncate": "END"},
        },
    },
]
CONFIGURE = [{"tags": {"env": "fuzz"}, "deletion_protection": "disabled"}, {"spec": {"serverless": {"x": 1}}}]
EMBED = [
    {"model": "pinecone-rag-bm25", "inputs": [{"text": "cats"}], "parameters": {"input_type": "passage"}}
]
RERANK = [
    {
        "model": "pinecone-rag-bm25-rerank",
        "query": "cats",
        "documents": [{"text": "cats"}, "dogs"],
        "top_n": 1,
        "return_documents": True,
        "rank_fields": ["text"],
    },
]
CONTROL_ROUTES: list[tuple[str, str, list[Any]]] = [
    ("POST", "/indexes", CREATE),
    ("POST", "/indexes#2026", CREATE_2026),
    ("POST", "/indexes/create-for-model", FOR_MODEL),
    ("PATCH", "/indexes/dense", CONFIGURE),
    ("POST", "/embed", EMBED),
    ("POST", "/rerank", RERANK),
]


@given(
    route=st.sampled_from(CONTROL_ROUTES).flatmap(
        lambda r: st.tuples(st.just(r[0]), st.just(r[1]), bodies(r[2]))
    ),
    name=st.text(max_size=50) | st.sampled_from(["fz", "a" * 46, "../x", "UPPER", "x-"]),
    choice=st.integers(0, 3),
)
@FUZZ
def test_fuzz_control_plane(
    target: FuzzTarget, route: tuple[str, str, bytes], name: str, choice: int
) -> None:
    method, path, body = route
    headers = {"Content-Type": "application/json"}
    if path.endswith("#2026"):
        path = path.removesuffix("#2026")
        headers["X-Pinecone-Api-Version"] = "2026-07"
    control = target.control()
    if choice == 0 and name not in PROTECTED:
        response = control.request(["GET", "DELETE"][len(name) % 2], f"/indexes/{quote(name, safe='')}")
    elif choice == 1:
        response = control.get(f"/models/{quote(name, safe='')}", params={"type": name, "vector_type": name})
    else:
        response = control.request(method, path, content=body, headers=headers)
    check(response, (path, body[:300]))
    if response.status_code == 201:  # a valid creation: remove it again so indexes do not pile up
        created = response.json()["name"]
        control.patch(f"/indexes/{created}", json={"deletion_protection": "disabled"})
        assert control.delete(f"/indexes/{created}").status_code == 202
    control.patch("/indexes/dense", json={"deletion_protection": "disabled"})


def test_server_still_answers_after_fuzzing(target: FuzzTarget) -> None:
    target.healthy()
