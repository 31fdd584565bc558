"""API versions and the JSON shapes of the control plane per version.

Two shape families exist: 2025-01/04/10 (``dimension``, ``metric``, ``spec``) and 2026-07 (``schema``,
``deployment``). The ``X-Pinecone-Api-Version`` header picks one; without it the engine answers 2025-10.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinecone_rag.server.control_db import IndexRecord
    from pinecone_rag.server.settings import HostFormat

V2025_01 = "2025-01"
V2025_04 = "2025-04"
V2025_10 = "2025-10"
V2026_07 = "2026-07"
DEFAULT_VERSION = V2025_10
SUPPORTED_VERSIONS = (V2025_01, V2025_04, V2025_10, V2026_07)
_DATED = re.compile(r"^(\d{4})-(\d{2})")


def negotiate_version(header: str | None) -> str:
    """The shape family for an ``X-Pinecone-Api-Version`` value.

    Older dated versions take the oldest family at or before them (2024-xx answers as 2025-01); newer ones
    the newest family at or before them (2026-04 answers as 2025-10). Undated values such as ``unstable``
    get the default.
    """
    if not header:
        return DEFAULT_VERSION
    match = _DATED.match(header.strip())
    if match is None:
        return DEFAULT_VERSION
    asked = f"{match.group(1)}-{match.group(2)}"
    chosen = V2025_01
    for version in SUPPORTED_VERSIONS:
        if version <= asked:
            chosen = version
    return chosen


def index_host(
    version: str, public_host: str, port: int, host_format: HostFormat, *, tls: bool = False
) -> str:
    """The data-plane host string describe_index returns, per version.

    The official SDKs disagree on what they can dial: 6.x-8.x REST needs ``http://`` to reach a
    plaintext server by index name, 8.x gRPC cannot dial ``http://``, and 9.x/10.x strip it. So versions
    up to 2025-04 get the bare ``host:port`` (as Pinecone Local returns), 2026-07 gets a scheme, and
    2025-10 follows the ``host_format`` setting. With ``tls`` the scheme is ``https://``, which every SDK
    dials (and a bare host means https to them anyway).
    """
    bare = f"{public_host}:{port}"
    if version <= V2025_04:
        return bare
    if version >= V2026_07 or host_format == "http":
        return f"{'https' if tls else 'http'}://{bare}"
    return bare


def _read_capacity() -> dict[str, Any]:
    return {"mode": "OnDemand", "status": {"state": "Ready"}}


def _spec_2025(record: IndexRecord, version: str) -> dict[str, Any]:
    spec = {key: dict(value) for key, value in record.spec.items()}
    if version >= V2025_10:
        for kind in ("serverless", "byoc"):
            if kind in spec:
                spec[kind].setdefault("read_capacity", _read_capacity())
    else:
        for kind in ("serverless", "byoc"):
            if kind in spec:
                spec[kind].pop("read_capacity", None)
                spec[kind].pop("schema", None)
    return spec


def _schema_2026(record: IndexRecord) -> dict[str, Any]:
    if record.vector_type == "sparse":
        return {"fields": {"_sparse_values": {"type": "sparse_vector"}}}
    # A classic dense index reports both fields (the 2026-07 spec says so).
    return {
        "fields": {
            "_values": {"type": "dense_vector", "dimension": record.dimension, "metric": record.metric},
            "_sparse_values": {"type": "sparse_vector"},
        }
    }


def _deployment_2026(record: IndexRecord) -> dict[str, Any]:
    if "pod" in record.spec:
        pod = record.spec["pod"]
        return {
            "deployment_type": "pod",
            "environment": pod.get("environment"),
            "pod_type": pod.get("pod_type", "p1.x1"),
            "replicas": pod.get("replicas", 1),
            "shards": pod.get("shards", 1),
        }
    if "byoc" in record.spec:
        return {"deployment_type": "byoc", "environment": record.spec["byoc"].get("environment")}
    serverless = record.spec.get("serverless", {})
    return {
        "deployment_type": "managed",
        "cloud": serverless.get("cloud", "aws"),
        "region": serverless.get("region", "us-east-1"),
    }


def index_json(record: IndexRecord, version: str, host: str) -> dict[str, Any]:
    """The IndexModel JSON of ``record`` in the shape of ``version``."""
    status = {"ready": True, "state": "Ready"}
    if version >= V2026_07:
        return {
            "name": record.name,
            "host": host,
            "status": status,
            "deployment": _deployment_2026(record),
            "schema": _schema_2026(record),
            "deletion_protection": record.deletion_protection,
            "tags": record.tags or None,
            "read_capacity": _read_capacity(),
        }
    body: dict[str, Any] = {
        "name": record.name,
        "metric": record.metric,
        "host": host,
        "spec": _spec_2025(record, version),
        "status": status,
        "vector_type": record.vector_type,
        "deletion_protection": record.deletion_protection,
    }
    if record.dimension is not None:
        body["dimension"] = record.dimension
    if record.tags:
        body["tags"] = dict(record.tags)
    if record.embed is not None:
        body["embed"] = dict(record.embed)
    return body
