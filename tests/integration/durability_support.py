"""Helpers shared by the durability tests: REST clients of a real server, fetches, stats, report entries."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import numpy as np

from stress_report import append_entry

HEADERS = {"Api-Key": "durability-key", "X-Pinecone-Api-Version": "2025-10"}
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
DIM = 8


def client(base_url: str, timeout: float = 30) -> httpx.Client:
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    return httpx.Client(base_url=base_url, headers=HEADERS, transport=transport, timeout=timeout)


def create_index(control: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    payload = {"name": name, "dimension": DIM, "metric": "dotproduct", "spec": SERVERLESS, **body}
    response = control.post("/indexes", json=payload)
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    return model


def data_url(host: str) -> str:
    return host if host.startswith("http") else f"http://{host}"


def f32(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def fetch_all(data: httpx.Client, ids: list[str], namespace: str = "") -> dict[str, Any]:
    """Every stored record among ``ids`` (fetched 500 at a time)."""
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        params = [("ids", rid) for rid in ids[start : start + 500]] + [("namespace", namespace)]
        response = data.get("/vectors/fetch", params=params)
        assert response.status_code == 200, response.text
        found.update(response.json()["vectors"])
    return found


def stats(data: httpx.Client) -> dict[str, Any]:
    response = data.post("/describe_index_stats", json={})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def report(test: str, started: float, **figures: Any) -> None:
    """One entry of the opt-in stress report (``tests/stress_report.py``) for one durability test."""
    append_entry(
        {"kind": "durability", "test": test, "wall_seconds": round(time.monotonic() - started, 1), **figures}
    )


def assert_record(got: dict[str, Any], values: np.ndarray, metadata: dict[str, Any] | None) -> None:
    """Values bit-exact in float32, metadata equal."""
    assert f32(got["values"]).tobytes() == f32(values).tobytes(), got["id"]
    assert got.get("metadata") == metadata, got["id"]
