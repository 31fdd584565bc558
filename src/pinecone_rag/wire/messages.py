"""Message classes of the data-plane proto, built in a private descriptor pool.

The official SDK registers the same package-less names (``.Vector``, ``.QueryRequest`` ...) in protobuf's
default pool; loading ours there too would fail with ``duplicate symbol 'Vector'``. Building the classes
from the generated descriptor in a pool of our own lets both live in one process.

The classes are dynamic, so they are typed ``Any``; they never cross the public API.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

from pinecone_rag._proto.vector_service_descriptor import FILE_DESCRIPTOR_SET

SERVICE_NAME = "VectorService"
"""The full gRPC service name: Pinecone's proto has no package."""

POOL = descriptor_pool.DescriptorPool()
POOL.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
for _file in descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET).file:
    POOL.AddSerializedFile(_file.SerializeToString())

SERVICE = POOL.FindServiceByName(SERVICE_NAME)


def message_class(name: str) -> Any:
    """The class of the top-level message ``name`` from the private pool."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(name))


Struct: Any = message_class("google.protobuf.Struct")
SparseValues: Any = message_class("SparseValues")
Vector: Any = message_class("Vector")
ScoredVector: Any = message_class("ScoredVector")
UpsertRequest: Any = message_class("UpsertRequest")
UpsertResponse: Any = message_class("UpsertResponse")
DeleteRequest: Any = message_class("DeleteRequest")
DeleteResponse: Any = message_class("DeleteResponse")
FetchRequest: Any = message_class("FetchRequest")
FetchResponse: Any = message_class("FetchResponse")
FetchByMetadataRequest: Any = message_class("FetchByMetadataRequest")
FetchByMetadataResponse: Any = message_class("FetchByMetadataResponse")
ListRequest: Any = message_class("ListRequest")
ListResponse: Any = message_class("ListResponse")
Pagination: Any = message_class("Pagination")
QueryRequest: Any = message_class("QueryRequest")
QueryResponse: Any = message_class("QueryResponse")
Usage: Any = message_class("Usage")
UpdateRequest: Any = message_class("UpdateRequest")
UpdateResponse: Any = message_class("UpdateResponse")
DescribeIndexStatsRequest: Any = message_class("DescribeIndexStatsRequest")
DescribeIndexStatsResponse: Any = message_class("DescribeIndexStatsResponse")
ListNamespacesRequest: Any = message_class("ListNamespacesRequest")
ListNamespacesResponse: Any = message_class("ListNamespacesResponse")
DescribeNamespaceRequest: Any = message_class("DescribeNamespaceRequest")
CreateNamespaceRequest: Any = message_class("CreateNamespaceRequest")
DeleteNamespaceRequest: Any = message_class("DeleteNamespaceRequest")
NamespaceDescription: Any = message_class("NamespaceDescription")

# Method name -> (request class, response class), in the order the service declares them.
METHODS: dict[str, tuple[Any, Any]] = {
    method.name: (message_class(method.input_type.full_name), message_class(method.output_type.full_name))
    for method in SERVICE.methods
}
