"""LlamaIndex's ``llama-index-vector-stores-pinecone`` ``PineconeVectorStore`` against a running engine.

Run with the Python of the venv that holds ``llama-index-vector-stores-pinecone``::

    python scripts/compat/llama_index_scenario.py --url http://127.0.0.1:5080

Nodes carry fixed embeddings, so the expected ranking is computed here. Output: one JSON line per step,
as ``scenario.py`` prints them.
"""

from __future__ import annotations

import argparse
import sys
import uuid
import warnings
from importlib.metadata import version
from typing import Any

from scenario import API_KEY, DIMENSION, QUERY, check, check_equal, cosine, get, record_values, run_steps

NAMESPACE = "li"
# Two source documents: doc-a owns nodes 0-3, doc-b nodes 4-7.
NODES = {
    f"n{i}": ("doc-a" if i < 4 else "doc-b", f"chunk {i} of the text", record_values(i)) for i in range(8)
}
STEPS = ("create_index", "add", "query", "query_filter", "delete", "delete_nodes", "clear", "delete_index")


def stored_id(node_id: str) -> str:
    """The id the store writes: ``<ref_doc_id>#<node_id>`` for nodes with a source document."""
    return f"{NODES[node_id][0]}#{node_id}"


class Run:
    """The index, the store and the nodes still expected in it."""

    def __init__(self, url: str) -> None:
        from pinecone import Pinecone  # noqa: PLC0415

        self.pc = Pinecone(api_key=API_KEY, host=url)
        self.name = f"compat-li-{uuid.uuid4().hex[:8]}"
        self.store: Any = None
        self.live = set(NODES)

    def expected(self, k: int, doc: str | None = None) -> list[tuple[str, float]]:
        scored = [
            (stored_id(nid), cosine(QUERY, NODES[nid][2]))
            for nid in self.live
            if doc is None or NODES[nid][0] == doc
        ]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored[:k]

    def query(self, k: int, filters: Any = None) -> Any:
        from llama_index.core.vector_stores.types import VectorStoreQuery  # noqa: PLC0415

        return self.store.query(VectorStoreQuery(query_embedding=QUERY, similarity_top_k=k, filters=filters))

    def check_result(self, result: Any, expected: list[tuple[str, float]]) -> None:
        check_equal(list(result.ids), [rid for rid, _ in expected], "ids")
        for node, score, (rid, want) in zip(result.nodes, result.similarities, expected, strict=True):
            check(abs(score - want) < 1e-5, f"score of {rid}: {score} != {want}")
            node_id = rid.split("#", 1)[1]
            check_equal(node.get_content(), NODES[node_id][1], f"text of {rid}")
            check_equal(node.ref_doc_id, NODES[node_id][0], f"ref_doc_id of {rid}")
            check_equal(int(node.metadata["position"]), int(node_id[1:]), f"metadata of {rid}")


def step_create_index(run: Run) -> None:
    from llama_index.vector_stores.pinecone import PineconeVectorStore  # noqa: PLC0415
    from pinecone import ServerlessSpec  # noqa: PLC0415

    run.pc.create_index(
        name=run.name,
        dimension=DIMENSION,
        metric="cosine",
        spec=ServerlessSpec(cloud="aws", region="us-east-1"),
    )
    bare = str(run.pc.describe_index(run.name).host).removeprefix("http://")
    run.store = PineconeVectorStore(pinecone_index=run.pc.Index(host=f"http://{bare}"), namespace=NAMESPACE)


def step_add(run: Run) -> None:
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: PLC0415

    nodes = [
        TextNode(
            id_=nid,
            text=text,
            embedding=values,
            metadata={"position": int(nid[1:]), "doc": doc},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
        )
        for nid, (doc, text, values) in NODES.items()
    ]
    check_equal(run.store.add(nodes), [stored_id(nid) for nid in NODES], "returned ids")
    stats = run.store.client.describe_index_stats()
    check_equal(int(get(get(stats, "namespaces")[NAMESPACE], "vector_count")), len(NODES), "vector count")


def step_query(run: Run) -> None:
    run.check_result(run.query(5), run.expected(5))


def step_query_filter(run: Run) -> None:
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters  # noqa: PLC0415

    filters = MetadataFilters(filters=[MetadataFilter(key="doc", value="doc-b")])
    run.check_result(run.query(8, filters), run.expected(8, doc="doc-b"))


def step_delete(run: Run) -> None:
    run.store.delete(ref_doc_id="doc-a")
    run.live = {nid for nid in run.live if NODES[nid][0] != "doc-a"}
    run.check_result(run.query(8), run.expected(8))


def step_delete_nodes(run: Run) -> None:
    run.store.delete_nodes(node_ids=[stored_id("n5")])
    run.live.discard("n5")
    run.check_result(run.query(8), run.expected(8))


def step_clear(run: Run) -> None:
    run.store.clear()
    run.live.clear()
    check_equal(list(run.query(8).ids), [], "ids after clear")


def step_delete_index(run: Run) -> None:
    run.pc.delete_index(run.name)
    check(run.name not in [get(m, "name") for m in run.pc.list_indexes()], "still listed after delete")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the engine's control-plane URL")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    run = Run(args.url)
    package = "llama-index-vector-stores-pinecone"
    versions = f"{package} {version(package)}, pinecone {version('pinecone')}"
    return run_steps(
        run, {name: globals()[f"step_{name}"] for name in STEPS}, version=versions, transport="rest"
    )


if __name__ == "__main__":
    sys.exit(main())
