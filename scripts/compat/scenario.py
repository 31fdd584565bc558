"""The shared compatibility scenario: one official ``pinecone`` SDK line against a running engine.

Run with the Python of a venv that holds one SDK line (6.x, 7.x, 8.x or 10.x)::

    python scripts/compat/scenario.py --url http://127.0.0.1:5080 --transport grpc

It creates an index, walks the data plane (upsert, query with filters, fetch, update, list, stats,
namespaces, delete) on the chosen transport, deletes the index, and prints one JSON line per step:
``{"step", "ok", "error"}``. ``ok`` is null when the SDK line lacks the feature (the table shows "n/a").
Every check compares exact results (ids in order, counts, metadata; scores and values within float32
rounding) with what this file computes itself. It imports only the standard library and the SDK, so it
runs unchanged in every venv.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import json
import math
import struct
import sys
import traceback
import uuid
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

API_KEY = "compat-key"
DIMENSION = 4
NS_A = "ns-a"
NS_B = "ns-b"
NS_C = "ns-c"
GENRES = ("drama", "comedy", "action")
QUERY = [0.3, 0.9, -0.2, 0.4]
# Steps in table order; the runner reads this list to lay out the columns.
STEPS = (
    "create_index",
    "describe_index",
    "list_indexes",
    "upsert",
    "query",
    "query_filter",
    "fetch",
    "update",
    "update_by_filter",
    "list",
    "stats",
    "namespaces",
    "delete",
    "delete_index",
)


class NotAvailableError(Exception):
    """The SDK line has no such feature (reported as n/a, not as a failure)."""


# ------------------------------------------------------------------------------------------ the data
def record_values(i: int) -> list[float]:
    return [1.0, i / 10, ((i * 7) % 12) / 12, ((i * 5) % 12) / 12 - 0.5]


def record_metadata(i: int) -> dict[str, Any]:
    return {"genre": GENRES[i % 3], "year": 2000 + i, "tags": [f"t{i % 2}", "all"]}


RECORDS = {f"doc-{i:02d}": (record_values(i), record_metadata(i)) for i in range(12)}
NS_B_RECORDS = {f"b-{i}": ([1.0, 0.0, 0.0, float(i)], {"genre": "drama", "year": 1990}) for i in range(3)}


def f32(x: float) -> float:
    """What the engine stores: float32."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def cosine(a: list[float], b: list[float]) -> float:
    a, b = [f32(x) for x in a], [f32(x) for x in b]
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def expected_ranking(
    records: dict[str, tuple[list[float], dict[str, Any]]], keep: Callable[[dict[str, Any]], bool], k: int
) -> list[tuple[str, float]]:
    """The top ``k`` (id, score) of ``QUERY`` among ``records`` whose metadata passes ``keep``."""
    scored = [(rid, cosine(QUERY, values)) for rid, (values, meta) in records.items() if keep(meta)]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[:k]


# ------------------------------------------------------------------------------------------ adapters
def get(obj: Any, name: str) -> Any:
    """A field of an SDK object, whichever of model, dataclass, struct or dict this line returns."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def number(x: Any) -> float:
    return float(x)


def same_values(actual: Any, expected: list[float]) -> bool:
    got = [float(v) for v in (actual or [])]
    return len(got) == len(expected) and all(
        math.isclose(g, f32(e), rel_tol=1e-6, abs_tol=1e-7) for g, e in zip(got, expected, strict=True)
    )


def plain_metadata(meta: Any) -> dict[str, Any]:
    """Metadata as JSON values (gRPC returns integers as floats, and 2004 == 2004.0 compares equal)."""
    return {
        key: (list(value) if isinstance(value, (list, tuple)) else value)
        for key, value in dict(meta or {}).items()
    }


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def accepts(method: Any, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------- the clients
class Sdk:
    """One SDK line's control plane and one data-plane client, behind the calls the steps need."""

    def __init__(self, url: str, transport: str) -> None:
        self.version = importlib.metadata.version("pinecone")
        self.major = int(self.version.split(".")[0])
        self.transport = transport
        self.url = url
        self.name = f"compat-{uuid.uuid4().hex[:10]}"
        if self.major >= 10:
            from pinecone import Pinecone  # noqa: PLC0415

            # 10.x reads the scheme of a gRPC host from this setting, not from the host string.
            self.pc = Pinecone(api_key=API_KEY, host=url, grpc_scheme="http")
        else:
            from pinecone import Pinecone  # noqa: PLC0415

            self.pc = Pinecone(api_key=API_KEY, host=url)
        self.index: Any = None

    def api_version(self) -> str:
        """The ``X-Pinecone-Api-Version`` this line sends, as the SDK itself declares it."""
        try:
            from pinecone.core.openapi.db_control import API_VERSION  # noqa: PLC0415

            return str(API_VERSION)
        except ImportError:
            from pinecone._internal.constants import CONTROL_PLANE_API_VERSION  # noqa: PLC0415

            return str(CONTROL_PLANE_API_VERSION)

    # -- control plane
    def create_index(self) -> None:
        from pinecone import ServerlessSpec  # noqa: PLC0415

        # 10.x keeps the dimension/metric/spec form as its documented way to make a vector index.
        self.pc.create_index(
            name=self.name,
            dimension=DIMENSION,
            metric="cosine",
            spec=ServerlessSpec(cloud="aws", region="us-east-1"),
        )

    def describe_index(self) -> Any:
        return self.pc.describe_index(self.name)

    def index_names(self) -> list[str]:
        return [get(model, "name") for model in self.pc.list_indexes()]

    def delete_index(self) -> None:
        self.pc.delete_index(self.name)

    def open_index(self) -> Any:
        """The data-plane client, opened the way this line's docs give for a plaintext local server."""
        if self.major >= 10:
            return self.pc.index(name=self.name, grpc=self.transport == "grpc")
        host = str(self.describe_index().host)
        bare = host.removeprefix("http://").removeprefix("https://")
        if self.transport == "grpc":
            from pinecone.grpc import GRPCClientConfig, PineconeGRPC  # noqa: PLC0415

            return PineconeGRPC(api_key=API_KEY, host=self.url).Index(
                host=bare, grpc_config=GRPCClientConfig(secure=False)
            )
        # By name, 6.x-8.x turn a bare host into https://, which a plaintext server cannot answer.
        return self.pc.Index(host=f"http://{bare}")


# ------------------------------------------------------------------------------------------- the steps
def step_create_index(sdk: Sdk) -> None:
    sdk.create_index()


def step_describe_index(sdk: Sdk) -> None:
    model = sdk.describe_index()
    check_equal(get(model, "name"), sdk.name, "name")
    check_equal(get(model, "dimension"), DIMENSION, "dimension")
    check_equal(str(get(model, "metric")), "cosine", "metric")
    check_equal(bool(get(get(model, "status"), "ready")), True, "status.ready")
    check(bool(get(model, "host")), f"no host in {model!r}")
    sdk.index = sdk.open_index()


def step_list_indexes(sdk: Sdk) -> None:
    check(sdk.name in sdk.index_names(), f"{sdk.name} not listed")


def step_upsert(sdk: Sdk) -> None:
    batch = [{"id": rid, "values": values, "metadata": meta} for rid, (values, meta) in RECORDS.items()]
    response = sdk.index.upsert(vectors=batch, namespace=NS_A)
    check_equal(int(get(response, "upserted_count")), len(RECORDS), "upserted_count")
    batch_b = [(rid, values, meta) for rid, (values, meta) in NS_B_RECORDS.items()]
    response = sdk.index.upsert(vectors=batch_b, namespace=NS_B)
    check_equal(int(get(response, "upserted_count")), len(NS_B_RECORDS), "upserted_count (tuples)")


def check_matches(response: Any, expected: list[tuple[str, float]], *, with_payload: bool = False) -> None:
    matches = list(get(response, "matches") or [])
    check_equal([get(m, "id") for m in matches], [rid for rid, _ in expected], "match ids")
    for match, (rid, score) in zip(matches, expected, strict=True):
        check(
            math.isclose(number(get(match, "score")), score, abs_tol=1e-5),
            f"score of {rid}: {get(match, 'score')} != {score}",
        )
        if with_payload:
            values, meta = RECORDS[rid]
            check(same_values(get(match, "values"), values), f"values of {rid}: {get(match, 'values')}")
            check_equal(plain_metadata(get(match, "metadata")), meta, f"metadata of {rid}")


def step_query(sdk: Sdk) -> None:
    response = sdk.index.query(
        vector=QUERY, top_k=5, namespace=NS_A, include_values=True, include_metadata=True
    )
    check_matches(response, expected_ranking(RECORDS, lambda _m: True, 5), with_payload=True)
    check_equal(get(response, "namespace"), NS_A, "namespace")
    # Query by the id of a stored record: that record ranks first with score 1.
    by_id = sdk.index.query(id="doc-07", top_k=1, namespace=NS_A)
    check_equal([get(m, "id") for m in get(by_id, "matches")], ["doc-07"], "query by id")


def step_query_filter(sdk: Sdk) -> None:
    flt = {"genre": {"$in": ["drama", "comedy"]}, "year": {"$gte": 2004}}
    response = sdk.index.query(vector=QUERY, top_k=12, namespace=NS_A, filter=flt)
    check_matches(
        response,
        expected_ranking(RECORDS, lambda m: m["genre"] in ("drama", "comedy") and m["year"] >= 2004, 12),
    )
    flt = {"$or": [{"tags": "t1"}, {"year": {"$lt": 2002}}], "genre": {"$ne": "action"}}
    response = sdk.index.query(vector=QUERY, top_k=3, namespace=NS_A, filter=flt, include_metadata=True)
    keep = lambda m: ("t1" in m["tags"] or m["year"] < 2002) and m["genre"] != "action"  # noqa: E731
    check_matches(response, expected_ranking(RECORDS, keep, 3), with_payload=False)


def step_fetch(sdk: Sdk) -> None:
    wanted = ["doc-01", "doc-05", "doc-10", "missing"]
    vectors = get(sdk.index.fetch(ids=wanted, namespace=NS_A), "vectors")
    check_equal(sorted(vectors), ["doc-01", "doc-05", "doc-10"], "fetched ids")
    for rid in ("doc-01", "doc-05", "doc-10"):
        values, meta = RECORDS[rid]
        check(same_values(get(vectors[rid], "values"), values), f"values of {rid}")
        check_equal(plain_metadata(get(vectors[rid], "metadata")), meta, f"metadata of {rid}")


def step_update(sdk: Sdk) -> None:
    new_values = [0.3, 0.9, -0.2, 0.41]
    sdk.index.update(
        id="doc-03", values=new_values, set_metadata={"genre": "updated", "extra": True}, namespace=NS_A
    )
    record = get(sdk.index.fetch(ids=["doc-03"], namespace=NS_A), "vectors")["doc-03"]
    check(same_values(get(record, "values"), new_values), f"updated values: {get(record, 'values')}")
    expected_meta = {**RECORDS["doc-03"][1], "genre": "updated", "extra": True}
    check_equal(plain_metadata(get(record, "metadata")), expected_meta, "merged metadata")
    response = sdk.index.query(vector=QUERY, top_k=5, namespace=NS_A, filter={"genre": "updated"})
    check_equal([get(m, "id") for m in get(response, "matches")], ["doc-03"], "query on updated metadata")
    RECORDS["doc-03"] = (new_values, expected_meta)


def step_update_by_filter(sdk: Sdk) -> None:
    if not accepts(sdk.index.update, "filter"):
        raise NotAvailableError("update by filter needs API 2025-10")
    comedies = sorted(rid for rid, (_, meta) in RECORDS.items() if meta["genre"] == "comedy")
    response = sdk.index.update(filter={"genre": "comedy"}, set_metadata={"flag": "x"}, namespace=NS_A)
    check_equal(int(get(response, "matched_records")), len(comedies), "matched_records")
    vectors = get(sdk.index.fetch(ids=list(RECORDS), namespace=NS_A), "vectors")
    flagged = sorted(
        rid for rid, vec in vectors.items() if plain_metadata(get(vec, "metadata")).get("flag") == "x"
    )
    check_equal(flagged, comedies, "records updated by filter")


def step_list(sdk: Sdk) -> None:
    page = sdk.index.list_paginated(prefix="doc-0", limit=4, namespace=NS_A)
    first = [get(item, "id") for item in get(page, "vectors")]
    check_equal(first, ["doc-00", "doc-01", "doc-02", "doc-03"], "first page")
    seen, token = list(first), get(get(page, "pagination"), "next")
    for _ in range(10):
        if not token:
            break
        page = sdk.index.list_paginated(prefix="doc-0", limit=4, namespace=NS_A, pagination_token=token)
        seen += [get(item, "id") for item in get(page, "vectors")]
        token = get(get(page, "pagination"), "next")
    check_equal(seen, [f"doc-0{i}" for i in range(10)], "all pages")


def namespace_counts(stats: Any) -> dict[str, int]:
    return {
        name: int(get(summary, "vector_count")) for name, summary in (get(stats, "namespaces") or {}).items()
    }


def step_stats(sdk: Sdk) -> None:
    stats = sdk.index.describe_index_stats()
    check_equal(namespace_counts(stats), {NS_A: len(RECORDS), NS_B: len(NS_B_RECORDS)}, "namespaces")
    check_equal(int(get(stats, "total_vector_count")), len(RECORDS) + len(NS_B_RECORDS), "total_vector_count")
    check_equal(int(get(stats, "dimension")), DIMENSION, "dimension")


def namespace_listing(sdk: Sdk) -> list[tuple[str, int]]:
    page = sdk.index.list_namespaces_paginated()
    return [(get(ns, "name"), int(get(ns, "record_count"))) for ns in (get(page, "namespaces") or [])]


def step_namespaces(sdk: Sdk) -> None:
    if not hasattr(sdk.index, "list_namespaces_paginated"):
        raise NotAvailableError("the namespaces API needs API 2025-04")
    check_equal(namespace_listing(sdk), [(NS_A, len(RECORDS)), (NS_B, len(NS_B_RECORDS))], "list_namespaces")
    description = sdk.index.describe_namespace(namespace=NS_B)
    check_equal(
        (get(description, "name"), int(get(description, "record_count"))), (NS_B, 3), "describe_namespace"
    )
    if hasattr(sdk.index, "create_namespace"):
        created = sdk.index.create_namespace(name=NS_C)
        check_equal(
            (get(created, "name"), int(get(created, "record_count") or 0)), (NS_C, 0), "create_namespace"
        )
        check_equal([n for n, _ in namespace_listing(sdk)], [NS_A, NS_B, NS_C], "listed after create")
        sdk.index.delete_namespace(namespace=NS_C)
    sdk.index.delete_namespace(namespace=NS_B)
    check_equal(namespace_listing(sdk), [(NS_A, len(RECORDS))], "listed after delete_namespace")
    check_equal(
        get(sdk.index.fetch(ids=list(NS_B_RECORDS), namespace=NS_B), "vectors") or {},
        {},
        "fetch in deleted namespace",
    )


def step_delete(sdk: Sdk) -> None:
    index = sdk.index
    index.delete(ids=["doc-10", "doc-11", "missing"], namespace=NS_A)
    check_equal(
        dict(get(index.fetch(ids=["doc-10", "doc-11"], namespace=NS_A), "vectors") or {}), {}, "deleted ids"
    )
    index.delete(filter={"genre": "drama"}, namespace=NS_A)
    survivors = sorted(
        rid
        for rid, (_, meta) in RECORDS.items()
        if rid not in ("doc-10", "doc-11") and meta["genre"] != "drama"
    )
    listed = [get(item, "id") for item in get(index.list_paginated(namespace=NS_A, limit=100), "vectors")]
    check_equal(listed, survivors, "ids left after delete by filter")
    index.delete(delete_all=True, namespace=NS_A)
    check_equal(namespace_counts(index.describe_index_stats()).get(NS_A, 0), 0, "count after delete_all")
    check_equal(
        dict(get(index.fetch(ids=survivors, namespace=NS_A), "vectors") or {}), {}, "fetch after delete_all"
    )


def step_delete_index(sdk: Sdk) -> None:
    if sdk.index is not None and hasattr(sdk.index, "close"):
        sdk.index.close()
    sdk.delete_index()
    check(sdk.name not in sdk.index_names(), "still listed after delete")
    try:
        sdk.describe_index()
    except Exception as exc:  # noqa: BLE001  (each line has its own NotFound class)
        check("notfound" in type(exc).__name__.lower(), f"describe after delete raised {exc!r}")
    else:
        raise AssertionError("describe_index found the deleted index")


# --------------------------------------------------------------------------------------------- driver
def report(step: str, ok: bool | None, error: str | None = None, **extra: Any) -> None:
    print(json.dumps({"step": step, "ok": ok, "error": error, **extra}), flush=True)


def run_steps(state: Any, steps: dict[str, Callable[[Any], None]], **facts: Any) -> int:
    """Run ``steps`` in order on ``state`` and report each; 1 if any failed.

    The first step creates the index: when it fails, every step but the last (which deletes the index)
    is reported as skipped, so one missing prerequisite is not counted as many failures.
    """
    report("sdk", True, None, **facts)
    first, last = next(iter(steps)), list(steps)[-1]
    failed = skipping = False
    for name, run in steps.items():
        if skipping and name != last:
            report(name, False, f"skipped: {first} failed")
            continue
        try:
            run(state)
        except NotAvailableError as exc:
            report(name, None, f"n/a: {exc}")
        except Exception as exc:  # noqa: BLE001  (a step's failure is a result, reported and counted)
            failed = True
            skipping = name == first
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            report(name, False, detail[:2000])
        else:
            report(name, True)
    # What actually carried the data plane, read from the modules the run loaded (not from the version).
    if facts.get("transport") != "grpc":
        stack = "HTTP/1.1"
    elif "pinecone._grpc" in sys.modules:
        stack = "Rust, tonic"
    elif "grpc" in sys.modules:
        stack = "grpcio"
    else:
        stack = "unknown"
    report("stack", True, None, stack=stack)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the engine's control-plane URL")
    parser.add_argument("--transport", choices=("rest", "grpc"), default="rest")
    args = parser.parse_args(argv)
    # The older lines warn about their own deprecated internals on import; that is not a result.
    warnings.simplefilter("ignore", DeprecationWarning)
    sdk = Sdk(args.url, args.transport)
    steps = {name: globals()[f"step_{name}"] for name in STEPS}
    return run_steps(sdk, steps, version=sdk.version, api_version=sdk.api_version(), transport=args.transport)


if __name__ == "__main__":
    sys.exit(main())
