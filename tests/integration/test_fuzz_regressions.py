"""Inputs the long fuzz profile (`make stress`) once answered with a 500; each must now be a 400."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import http_client

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

FLOAT32_OVERFLOW = 3.4028235677973366e38  # rounds to infinity in float32


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/query", {"vector": [FLOAT32_OVERFLOW] * 4, "topK": 3, "namespace": "ns"}),
        (
            "/query",
            {
                "vector": [FLOAT32_OVERFLOW],
                "topK": 3,
                "filter": {"$and": [{"genre": {"$in": ["drama", "comedy"]}}, {"year": {"$gte": 2000}}]},
                "includeMetadata": True,
                "namespace": "ns",
            },
        ),
        ("/vectors/update", {"id": "a", "values": [FLOAT32_OVERFLOW, 0, 0, 0], "namespace": "ns"}),
        ("/vectors/upsert", {"vectors": [{"id": "a", "values": [FLOAT32_OVERFLOW, 0, 0, 0]}]}),
        ("/vectors/update", {"id": "a", "values": [1, [2], 3, 4]}),
    ],
)
def test_data_plane_bodies_once_500_are_400(
    make_index: Callable[..., dict[str, Any]], path: str, body: dict[str, Any]
) -> None:
    host = make_index(dimension=4)["host"]
    with http_client(host if host.startswith("http") else f"http://{host}") as data:
        response = data.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"name": None, "schema": {"fields": {"_values": []}}},
        {"name": "x1", "schema": {"fields": {"_sparse_values": "dense"}}},
        {"name": "x2", "schema": {"fields": {"_values": {"dimension": 4}}}, "deployment": ["aws"]},
    ],
)
def test_2026_create_bodies_once_500_are_400(control: httpx.Client, body: dict[str, Any]) -> None:
    response = control.post("/indexes", json=body, headers={"X-Pinecone-Api-Version": "2026-07"})
    assert response.status_code == 400, response.text
