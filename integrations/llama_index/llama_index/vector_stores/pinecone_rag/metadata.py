"""Nodes <-> Pinecone record metadata.

A node is stored as LlamaIndex's usual metadata dict (``node_to_metadata_dict``: the user's metadata at the
top level for filtering, the whole node as JSON under ``_node_content``, its class under ``_node_type`` and
its ref doc id under ``doc_id``), plus ``_node_id`` so that queries and deletes can be restricted to node
ids. Before anything is sent, each record's metadata is made storable:

* ``None`` values and empty lists are dropped from the top level (Pinecone rejects nulls; an empty list
  matches no filter anyway). The node keeps them inside ``_node_content``, and ``IS_EMPTY`` matches them.
* Nested objects and lists of non-strings are rejected with a message naming the node and the key, or
  flattened (``{"a": {"b": 1}}`` -> ``"a.b": 1``; list items become strings) with ``nested="flatten"``.
* The JSON size is checked against Pinecone's 40 KB per-record limit, naming the node and its size.

With ``remove_text=True`` the text is blanked inside ``_node_content`` and stored once under ``text_key``,
from where :func:`metadata_to_node` restores it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode

__all__ = [
    "MAX_METADATA_BYTES",
    "NODE_ID_KEY",
    "REF_DOC_KEY",
    "MetadataTooLargeError",
    "NestedMetadata",
    "metadata_size",
    "metadata_to_node",
    "node_to_metadata",
]

MAX_METADATA_BYTES: Final = 40960
"""Pinecone's limit on one record's metadata, as UTF-8 JSON."""
NODE_ID_KEY: Final = "_node_id"
"""Metadata key holding the node id (Pinecone cannot filter on record ids)."""
REF_DOC_KEY: Final = "doc_id"
"""Metadata key holding the ref doc id, the one LlamaIndex's Pinecone stores delete by."""
_NODE_CONTENT: Final = "_node_content"

NestedMetadata = Literal["error", "flatten"]


class MetadataTooLargeError(ValueError):
    """A node's metadata exceeds Pinecone's 40 KB per-record limit."""


def metadata_size(metadata: dict[str, Any]) -> int:
    """The UTF-8 JSON size of ``metadata`` in bytes, as Pinecone counts it against the 40 KB limit."""
    # orjson (pinecone-rag's own JSON library, which its engine measures this limit with) writes the same
    # compact UTF-8 JSON about ten times faster than json.dumps, and this runs for every node on every add.
    try:
        return len(orjson.dumps(metadata))
    except (orjson.JSONEncodeError, TypeError):  # non-string keys, integers beyond 64 bits: rare
        return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())


def node_to_metadata(
    node: BaseNode,
    *,
    text_key: str = "text",
    remove_text: bool = False,
    nested: NestedMetadata = "error",
) -> dict[str, Any]:
    """The metadata to store for ``node``, checked for Pinecone's types and size.

    Args:
        node: The node.
        text_key: Where the text goes when ``remove_text`` is set.
        remove_text: Store the text once under ``text_key`` instead of inside ``_node_content``.
        nested: ``"error"`` rejects nested objects and lists of non-strings; ``"flatten"`` flattens them.

    Raises:
        ValueError: A value Pinecone cannot store (with ``nested="error"``).
        MetadataTooLargeError: The metadata exceeds 40 KB; the message names the node and the largest keys.

    Example:
        >>> sorted(node_to_metadata(TextNode(id_="n1", text="hi", metadata={"a": 1, "b": None})))
        ['_node_content', '_node_id', '_node_type', 'a', 'doc_id', 'document_id', 'ref_doc_id']
    """
    raw = node_to_metadata_dict(node, remove_text=remove_text, flat_metadata=False)
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        _put(metadata, key, value, node.node_id, nested)
    metadata[NODE_ID_KEY] = node.node_id
    if remove_text:
        if text_key in metadata:
            raise ValueError(
                f"Node {node.node_id!r} has a metadata key {text_key!r}, which is where this store puts the "
                "text when remove_text_from_metadata is set; rename the key or choose another text_key."
            )
        metadata[text_key] = node.get_content()
    size = metadata_size(metadata)
    if size > MAX_METADATA_BYTES:
        largest = sorted(metadata, key=lambda k: metadata_size({k: metadata[k]}), reverse=True)[:3]
        shown = ", ".join(f"{k!r} ({metadata_size({k: metadata[k]})} bytes)" for k in largest)
        raise MetadataTooLargeError(
            f"Metadata of node {node.node_id!r} is {size} bytes, over Pinecone's limit of "
            f"{MAX_METADATA_BYTES} bytes per record. Largest keys: {shown}. The node's metadata is also "
            "copied into _node_content (and into its relationships): shrink it, exclude large values, or "
            "split the text into smaller chunks."
        )
    return metadata


def _put(out: dict[str, Any], key: str, value: Any, node_id: str, nested: NestedMetadata) -> None:
    if value is None or (isinstance(value, list) and not value):
        return
    # Tuples, not `X | Y` unions: isinstance checks a tuple several times faster, once per key per node.
    if isinstance(value, (bool, str, int, float)):
        out[key] = value
        return
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, str) for item in value):
            out[key] = list(value)
            return
        if nested == "flatten":
            out[key] = [item if isinstance(item, str) else json.dumps(item) for item in value]
            return
        problem = "a list containing non-strings"
    elif isinstance(value, dict):
        if nested == "flatten":
            for child_key, child in value.items():
                _put(out, f"{key}.{child_key}", child, node_id, nested)
            return
        problem = "a nested object"
    else:
        problem = f"a {type(value).__name__}"
    raise ValueError(
        f"Metadata key {key!r} of node {node_id!r} is {problem}; Pinecone stores strings, numbers, booleans "
        "and lists of strings. Convert the value, drop the key, or pass nested_metadata='flatten' to store "
        "nested objects as dotted keys and list items as strings."
    )


def metadata_to_node(metadata: dict[str, Any], *, record_id: str, text_key: str = "text") -> BaseNode:
    """Rebuild a node from stored metadata.

    Records written by this store (or by LlamaIndex's official Pinecone store) carry the node in
    ``_node_content``; a text stored under ``text_key`` replaces the (possibly blanked) text there. Records
    written by other tools become a ``TextNode`` with the record id, the ``text_key`` text and the rest of
    the metadata.
    """
    text = metadata.get(text_key)
    if _NODE_CONTENT in metadata:
        node = metadata_dict_to_node(metadata)
        # Only a blanked text is restored: with the text kept in _node_content, a user key that happens to
        # be called like text_key is just metadata.
        if isinstance(text, str) and not node.get_content():
            node.set_content(text)
        return node
    rest = {k: v for k, v in metadata.items() if k != text_key}
    return TextNode(id_=record_id, text=text if isinstance(text, str) else "", metadata=rest)
