"""Tuning of the local engine's storage: index builder, freshness layer, planner and executor."""

from __future__ import annotations

from dataclasses import dataclass

from pinecone_rag.server.kmeans import DEFAULT_TARGET_CLUSTER_SIZE, FLAT_RECORDS


@dataclass(frozen=True)
class EngineConfig:
    """How an index stores, indexes and searches its records.

    Attributes:
        build_min_records: The builder folds the freshness layer into cluster files once it holds this
            many records...
        build_growth: ...or this fraction of the published records, whichever is more (so the cost of
            rewriting clusters stays proportional to what was written)...
        build_idle_s: ...or once the namespace has had no write for this long.
        build_stream_bytes: While writes stream into a namespace (the last one came less than
            ``build_idle_s`` ago), the builder waits until its freshness layer holds this many bytes of
            vectors, or a quarter of ``freshness_max_records``, before building; the pause after the
            stream starts the build at once. A build competes with ingest for the CPU and the
            interpreter, and one build after a stream does the work of the several it replaces (each
            rewrites the clusters the previous one wrote). The price: queries during a bulk load scan
            up to this much by brute force (256 MiB: 87k x 768 in ~20 ms, bench/RESULTS.md). 0 builds
            at the thresholds above even while writes stream in.
        freshness_max_records: Writes are refused with RESOURCE_EXHAUSTED (429 over REST) while the
            freshness layers of a namespace hold this many records, until the builder catches up.
        freshness_max_bytes: The same cap in bytes of vector data.
        target_cluster_size: Records per cluster the builder aims for; clusters above twice this are
            split, clusters below an eighth of it are merged into a neighbour.
        flat_records: Namespaces with fewer records stay one flat cluster (no centroids), whatever
            ``target_cluster_size`` says: brute force over them is cheaper than ranking centroids.
        sparse_chunk_records: Records per cluster file of a sparse-only index (no centroids there).
        probe_fraction: Share of clusters a query scans by default (``scanFactor`` multiplies it).
        min_probe: The fewest clusters a query scans. With about 500 records per cluster, namespaces
            below ~4k records are scanned whole; a million records (~1,100 clusters) probe 45 clusters,
            about 4% of the data, for recall@10 0.95-0.96 (bench/RESULTS.md).
        exact_filter_records: A dense query whose filter matches at most this many records scores
            exactly those records instead of probing clusters: exact results for selective filters.
            It reads the namespace's in-memory copy of its vectors (``memory_copy_max_bytes``); a
            namespace too large for one makes it on the first such query. 0 turns this path off.
        memory_copy_max_bytes: A clustered namespace whose vectors take at most this many bytes keeps a
            contiguous copy of them in memory, made when its index is opened or built, and queries scan
            that copy instead of the mapped cluster files: at 1M x 128 a query then costs about 30% less
            (no cache lookup per cluster, fewer TLB misses; bench/RESULTS.md). The mapped files' pages
            stay in the reclaimable page cache. 0 turns the copy off.
        cache_bytes: Budget of memory-mapped cluster files kept open (least recently used are closed).
        release_idle_s: Memory a large build freed (copies of a namespace of at least 50k records) is
            handed back to the operating system once no namespace of the index has had a write for this
            long. While writes keep coming, the allocator keeps it for them: memory handed back costs a
            page fault per page to touch again, which the next writes would pay (bench/allocator.py).
        builder: Run the background builder at all (off: everything stays in the freshness layer).
        seed: Seeds k-means, so builds are reproducible.
    """

    # A build competes with ingest for the one interpreter (35% of engine time during a 100k upsert
    # stream with builds every 2,000 records, measured); fewer, larger builds leave ingest the CPU while
    # the freshness layer stays small enough to scan in milliseconds.
    build_min_records: int = 10_000
    build_growth: float = 0.5
    build_idle_s: float = 0.5
    build_stream_bytes: int = 256 << 20
    freshness_max_records: int = 500_000
    freshness_max_bytes: int = 1 << 30
    target_cluster_size: int = DEFAULT_TARGET_CLUSTER_SIZE
    flat_records: int = FLAT_RECORDS
    sparse_chunk_records: int = 16_384
    probe_fraction: float = 0.04
    min_probe: int = 8
    exact_filter_records: int = 50_000
    memory_copy_max_bytes: int = 2 << 30
    cache_bytes: int = 2 << 30
    release_idle_s: float = 10.0
    builder: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.build_min_records < 1 or self.target_cluster_size < 2 or self.sparse_chunk_records < 1:
            raise ValueError("build_min_records, target_cluster_size and sparse_chunk_records must be >= 1")
        if self.flat_records < 0 or self.memory_copy_max_bytes < 0 or self.build_stream_bytes < 0:
            raise ValueError("flat_records, memory_copy_max_bytes and build_stream_bytes must be >= 0")
        if self.release_idle_s < 0:
            raise ValueError("release_idle_s must be >= 0")
        if self.freshness_max_records <= self.build_min_records:
            raise ValueError("freshness_max_records must exceed build_min_records")
        if not 0 < self.probe_fraction <= 1:
            raise ValueError("probe_fraction must be in (0, 1]")
