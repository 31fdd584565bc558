"""Conformance suite: the official pinecone 8.x SDK (REST and gRPC) against the local engine."""
