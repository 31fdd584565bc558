"""Turn files into searchable records: load, split, embed (with a disk cache), skip what is stored, upsert.

The pieces are usable on their own, and ``pinecone-rag ingest`` and ``pinecone-rag demo`` chain them:

* :func:`find_files` / :func:`read_text` load text, markdown, reStructuredText and (when ``pypdf`` is
  installed) PDF files;
* :func:`split_text` cuts text into chunks of at most ``chunk_size`` characters on paragraph, line,
  sentence and word boundaries, each chunk repeating up to ``overlap`` characters of the previous one;
* :func:`make_chunks` gives every chunk a content-hash id: ``<source hash>-<text hash>``, so the same
  text in the same file always gets the same id, and a file's records can be listed by id prefix;
* :class:`EmbeddingCache` keeps dense embeddings on disk (a ``.npy`` matrix and a JSON index keyed by
  the text's SHA-256; never pickle), so re-ingesting unchanged text costs no model time;
* :func:`ingest_chunks` creates the index if needed (dimension from the model), fetches which ids already
  exist, embeds only the others through the Inference API (``pc.inference.embed``, batched at the model's
  limit) and upserts them with the client's parallel batched upsert.

Example:
    >>> split_text("one two three four five", chunk_size=14, overlap=6)
    ['one two three', 'three four', 'four five']
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.errors import NotFoundError
from pinecone_rag.models import SparseValues

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping, Sequence

    import numpy.typing as npt

    from pinecone_rag.client import Index, PineconeClient
    from pinecone_rag.sparse import BM25Encoder

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MODEL",
    "MODEL_TAG",
    "Chunk",
    "EmbeddingCache",
    "IngestError",
    "IngestReport",
    "ModelSpec",
    "embed_dense",
    "embed_sparse",
    "existing_ids",
    "find_files",
    "ingest_chunks",
    "make_chunks",
    "model_spec",
    "read_text",
    "split_text",
    "text_hash",
]

DEFAULT_MODEL = "all-minilm-l6-v2"
DEFAULT_CHUNK_SIZE = 800
DEFAULT_CHUNK_OVERLAP = 100
MODEL_TAG = "embed_model"
"""The index tag naming the model its records were embedded with (``query`` embeds with the same one)."""
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst"})
PDF_SUFFIX = ".pdf"
_FETCH_BATCH = 1000  # Pinecone's limit of ids per fetch
_SEPARATORS = ("\n\n", "\n", ". ", " ")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class IngestError(Exception):
    """A problem the user can fix (missing file, unsupported type, wrong index); the message is one line."""


# ------------------------------------------------------------------------------------------ loading
def pdf_supported() -> bool:
    """Whether ``pypdf`` is installed, so PDF files can be read."""
    return importlib.util.find_spec("pypdf") is not None


def find_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files to ingest: each file given, and every supported file under each directory given.

    Directories are walked recursively in sorted order, skipping hidden entries; files of other types
    found there are skipped (PDFs too when ``pypdf`` is missing). A file named explicitly must be
    supported.

    Raises:
        IngestError: a path does not exist, or a file named explicitly cannot be read.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise IngestError(f"no such file or directory: {raw}")
        if path.is_file():
            _check_supported(path)
            found.append(path)
            continue
        for candidate in sorted(path.rglob("*")):
            relative = candidate.relative_to(path)
            if any(part.startswith(".") for part in relative.parts) or not candidate.is_file():
                continue
            suffix = candidate.suffix.lower()
            if suffix in TEXT_SUFFIXES or (suffix == PDF_SUFFIX and pdf_supported()):
                found.append(candidate)
    # A file named twice (directly and inside a directory) is read once.
    return list(dict.fromkeys(found))


def _check_supported(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == PDF_SUFFIX:
        if not pdf_supported():
            raise IngestError(f"{path}: reading PDF files needs pypdf (pip install pypdf)")
        return
    if suffix not in TEXT_SUFFIXES:
        supported = ", ".join(sorted(TEXT_SUFFIXES | {PDF_SUFFIX}))
        raise IngestError(f"{path}: unsupported file type {suffix or '(none)'} (supported: {supported})")


def read_text(path: Path) -> str:
    """The text of a file: UTF-8 (undecodable bytes replaced), or the text layer of a PDF.

    Raises:
        IngestError: the file cannot be read.
    """
    try:
        if path.suffix.lower() == PDF_SUFFIX:
            # Optional dependency (checked by find_files), imported by name: it ships no type stubs here.
            pypdf: Any = importlib.import_module("pypdf")
            reader = pypdf.PdfReader(str(path))
            return "\n\n".join(page.extract_text() or "" for page in reader.pages)
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise IngestError(f"{path}: {error.strerror or error}") from error


# ---------------------------------------------------------------------------------------- splitting
def _pieces(text: str, size: int, separators: Sequence[str]) -> list[str]:
    """``text`` cut into pieces of at most ``size`` characters, at the coarsest boundary that works."""
    if len(text) <= size:
        return [text]
    for position, separator in enumerate(separators):
        if separator not in text:
            continue
        parts = text.split(separator)
        # Separators stay attached to the piece they end, so joining pieces restores the text.
        parts = [part + separator for part in parts[:-1]] + [parts[-1]]
        out: list[str] = []
        for part in parts:
            if len(part) > size:
                out.extend(_pieces(part, size, separators[position + 1 :]))
            elif part:
                out.append(part)
        return out
    return [text[start : start + size] for start in range(0, len(text), size)]


def split_text(
    text: str, chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int = DEFAULT_CHUNK_OVERLAP
) -> list[str]:
    """Chunks of at most ``chunk_size`` characters that follow the text's own structure.

    Paragraphs are kept whole when they fit, else lines, then sentences, then words (a word longer than
    a chunk is cut). Pieces are packed greedily; each new chunk starts with the last pieces of the
    previous one, up to ``overlap`` characters, so a sentence cut at a boundary is still found whole.

    Args:
        text: The text to split.
        chunk_size: The largest chunk, in characters.
        overlap: Characters of context repeated from the previous chunk (less than ``chunk_size``).

    Raises:
        ValueError: ``chunk_size`` is not positive or ``overlap`` is not in ``[0, chunk_size)``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if not 0 <= overlap < chunk_size:
        raise ValueError(f"overlap must be at least 0 and less than chunk_size, got {overlap}")
    chunks: list[str] = []
    window: list[str] = []
    length = 0
    for piece in _pieces(text, chunk_size, _SEPARATORS):
        if window and length + len(piece) > chunk_size:
            chunks.append("".join(window))
            # Keep the tail that fits the overlap and leaves room for the next piece.
            while window and (length > overlap or length + len(piece) > chunk_size):
                length -= len(window.pop(0))
        window.append(piece)
        length += len(piece)
    if window:
        chunks.append("".join(window))
    cleaned = [chunk.strip() for chunk in chunks]
    return [chunk for chunk in cleaned if chunk]


# ------------------------------------------------------------------------------------------- chunks
def text_hash(text: str) -> str:
    """The SHA-256 of a text, in hex: the key of the embedding cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """One record to be: its content-hash id, its text and its metadata (``text`` included).

    Attributes:
        id: ``<first 8 hex of the source's SHA-256>-<first 24 hex of the text's SHA-256>``.
        text: The chunk's text.
        metadata: Stored with the record; the text is under ``text`` (LangChain's and LlamaIndex's
            default ``text_key``), so both adapters read these records as documents.
    """

    id: str
    text: str
    metadata: dict[str, Any]


def make_chunks(
    source: str,
    text: str,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overlap: int = DEFAULT_CHUNK_OVERLAP,
    metadata: Mapping[str, Any] | None = None,
) -> list[Chunk]:
    """Split ``text`` from ``source`` into :class:`Chunk` records.

    Each chunk's metadata is ``metadata`` plus ``source``, ``chunk`` (its number in the source, from 0)
    and ``text``. A text repeated within a source becomes one record (the first occurrence).

    Example:
        >>> [c.metadata["chunk"] for c in make_chunks("a.md", "one. two.", chunk_size=5, overlap=0)]
        [0, 1]
    """
    prefix = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    chunks: dict[str, Chunk] = {}
    for number, piece in enumerate(split_text(text, chunk_size, overlap)):
        record_id = f"{prefix}-{text_hash(piece)[:24]}"
        if record_id in chunks:
            continue
        chunks[record_id] = Chunk(
            record_id, piece, {**(metadata or {}), "source": source, "chunk": number, "text": piece}
        )
    return list(chunks.values())


# ------------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelSpec:
    """What ingest needs to know about an embedding model.

    Attributes:
        name: The model name.
        vector_type: ``dense`` or ``sparse``.
        dimension: The dense dimension (None for sparse models).
        metric: The metric a new index gets.
        max_batch: Texts per embed request.
    """

    name: str
    vector_type: str
    dimension: int | None
    metric: str
    max_batch: int = 96


_KNOWN_MODELS = {
    spec.name: spec
    for spec in (
        # The local engine's models.
        ModelSpec("all-minilm-l6-v2", "dense", 384, "cosine"),
        ModelSpec("pinecone-rag-bm25", "sparse", None, "dotproduct"),
        # Pinecone's hosted models (the local engine answers to the sparse one too).
        ModelSpec("pinecone-sparse-english-v0", "sparse", None, "dotproduct"),
        ModelSpec("multilingual-e5-large", "dense", 1024, "cosine"),
        ModelSpec("llama-text-embed-v2", "dense", 1024, "cosine"),
    )
}


def model_spec(pc: PineconeClient, model: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``model``: from a table of known models, else by embedding one text.

    Raises:
        PineconeError: the service does not know the model (its message lists the available ones).
    """
    known = _KNOWN_MODELS.get(model)
    if known is not None:
        return known
    probe = pc.inference.embed(model, ["dimension probe"], {"input_type": "passage"})
    values = probe[0].values
    if probe.vector_type == "sparse" or values is None:
        return ModelSpec(model, "sparse", None, "dotproduct")
    return ModelSpec(model, "dense", len(values), "cosine")


# -------------------------------------------------------------------------------------------- cache
class EmbeddingCache:
    """Dense embeddings of one model on disk, keyed by the SHA-256 of the embedded text.

    Two files per model in ``directory``: ``<model>.npy`` (a float32 matrix, one row per text) and
    ``<model>.json`` (the row of each key). They are rewritten whole by :meth:`save`, each through a
    temporary file and an atomic rename, so an interrupted run leaves the previous cache intact.

    Args:
        directory: Where the files live (created on save).
        model: The model whose embeddings these are.
    """

    def __init__(self, directory: str | os.PathLike[str], model: str) -> None:
        self.directory = Path(directory)
        self.model = model
        stem = _SAFE_NAME.sub("_", model)
        self._matrix_path = self.directory / f"{stem}.npy"
        self._index_path = self.directory / f"{stem}.json"
        self._rows: dict[str, int] = {}
        self._matrix: npt.NDArray[np.float32] | None = None
        self._pending: list[tuple[str, npt.NDArray[np.float32]]] = []
        self._load()

    def _load(self) -> None:
        if not (self._matrix_path.exists() and self._index_path.exists()):
            return
        try:
            index = json.loads(self._index_path.read_text(encoding="utf-8"))
            matrix = np.load(self._matrix_path, allow_pickle=False)
        except (OSError, ValueError):
            return  # a damaged cache is only a slower run: start afresh
        keys = index.get("keys") if isinstance(index, dict) else None
        if index.get("model") != self.model or not isinstance(keys, list) or len(keys) != len(matrix):
            return
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._rows = {str(key): row for row, key in enumerate(keys)}

    def __len__(self) -> int:
        return len(self._rows) + len(self._pending)

    def get(self, key: str) -> npt.NDArray[np.float32] | None:
        """The cached embedding of the text with this hash, or None."""
        row = self._rows.get(key)
        if row is not None and self._matrix is not None:
            vector: npt.NDArray[np.float32] = self._matrix[row]
            return vector
        for pending_key, vector in self._pending:
            if pending_key == key:
                return vector
        return None

    def put(self, keys: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Remember embeddings (written by the next :meth:`save`)."""
        for key, vector in zip(keys, vectors, strict=True):
            if key not in self._rows:
                self._pending.append((key, np.asarray(vector, dtype=np.float32)))

    def save(self) -> None:
        """Write new embeddings to disk (nothing happens when there are none)."""
        if not self._pending:
            return
        fresh: dict[str, npt.NDArray[np.float32]] = {}
        for key, vector in self._pending:
            fresh.setdefault(key, vector)
        new_rows = np.stack(list(fresh.values()))
        matrix = new_rows if self._matrix is None else np.concatenate([self._matrix, new_rows])
        keys = [*sorted(self._rows, key=self._rows.__getitem__), *fresh]
        self.directory.mkdir(parents=True, exist_ok=True)
        matrix_tmp = self._matrix_path.with_suffix(".npy.tmp")
        index_tmp = self._index_path.with_suffix(".json.tmp")
        with matrix_tmp.open("wb") as file:
            np.save(file, matrix, allow_pickle=False)
        index_tmp.write_text(json.dumps({"model": self.model, "keys": keys}), encoding="utf-8")
        # The matrix first: an index that names rows the matrix lacks would fail the length check.
        matrix_tmp.replace(self._matrix_path)
        index_tmp.replace(self._index_path)
        self._matrix = matrix
        self._rows = {key: row for row, key in enumerate(keys)}
        self._pending.clear()


# -------------------------------------------------------------------------------------------- embed
def _bar(total: int, desc: str, show_progress: bool | None) -> Any:
    # tqdm.auto picks the notebook widget inside Jupyter; imported by name because tqdm has no stubs.
    tqdm: Any = importlib.import_module("tqdm.auto").tqdm

    # disable=None lets tqdm turn the bar off when stderr is not a terminal.
    return tqdm(
        total=total, desc=desc, unit="chunk", disable=None if show_progress is None else not show_progress
    )


def embed_dense(
    pc: PineconeClient,
    spec: ModelSpec,
    texts: Sequence[str],
    *,
    cache: EmbeddingCache | None = None,
    show_progress: bool | None = None,
) -> tuple[npt.NDArray[np.float32], int]:
    """Dense passage embeddings of ``texts``, from the cache where possible, else from the Inference API.

    Returns:
        The ``(len(texts), dimension)`` matrix and how many texts were sent to the model.
    """
    keys = [text_hash(text) for text in texts]
    rows: list[npt.NDArray[np.float32] | None] = [None if cache is None else cache.get(k) for k in keys]
    missing = [position for position, row in enumerate(rows) if row is None]
    parameters = {"input_type": "passage", "truncate": "END"}
    bar = _bar(len(missing), f"embed ({spec.name})", show_progress)
    try:
        for start in range(0, len(missing), spec.max_batch):
            batch = missing[start : start + spec.max_batch]
            result = pc.inference.embed(
                spec.name, [texts[p] for p in batch], parameters, max_batch=spec.max_batch
            )
            vectors = np.stack([np.asarray(e.values, dtype=np.float32) for e in result.data])
            for position, vector in zip(batch, vectors, strict=True):
                rows[position] = vector
            if cache is not None:
                cache.put([keys[p] for p in batch], vectors)
            bar.update(len(batch))
    finally:
        bar.close()
        # Whatever was embedded before a failure is kept, so the next run resumes from there.
        if cache is not None:
            cache.save()
    if not texts:
        return np.zeros((0, spec.dimension or 0), dtype=np.float32), 0
    return np.stack([row for row in rows if row is not None]), len(missing)


def embed_sparse(
    pc: PineconeClient, spec: ModelSpec, texts: Sequence[str], *, show_progress: bool | None = None
) -> list[SparseValues]:
    """Sparse passage embeddings of ``texts`` from the Inference API (cheap: never cached)."""
    out: list[SparseValues] = []
    bar = _bar(len(texts), f"embed ({spec.name})", show_progress)
    try:
        for start in range(0, len(texts), spec.max_batch):
            batch = list(texts[start : start + spec.max_batch])
            result = pc.inference.embed(spec.name, batch, {"input_type": "passage"}, max_batch=spec.max_batch)
            out.extend(SparseValues.of(e.sparse_indices or [], e.sparse_values or []) for e in result.data)
            bar.update(len(batch))
    finally:
        bar.close()
    return out


# ------------------------------------------------------------------------------------------- ingest
@dataclass
class IngestReport:
    """What an ingest did.

    Attributes:
        index: The index name.
        namespace: The namespace written.
        chunks: Chunks considered.
        existing: Chunks skipped because their id was already stored.
        embedded: Chunks sent to the model.
        cached: Chunks whose embedding came from the cache.
        upserted: Records written.
        created_index: Whether the index was created by this run.
        seconds: Time per step (``check``, ``embed``, ``upsert``).
    """

    index: str
    namespace: str
    chunks: int = 0
    existing: int = 0
    embedded: int = 0
    cached: int = 0
    upserted: int = 0
    created_index: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def ensure_index(pc: PineconeClient, name: str, spec: ModelSpec, *, metric: str | None = None) -> bool:
    """Create ``name`` for ``spec``'s vectors if it does not exist; check it fits them if it does.

    Returns:
        True when the index was created.

    Raises:
        IngestError: the existing index holds another kind or dimension of vectors.
    """
    try:
        model = pc.describe_index(name)
    except NotFoundError:
        pc.create_index(
            name,
            dimension=spec.dimension,
            metric=metric or spec.metric,  # type: ignore[arg-type]
            vector_type=spec.vector_type,  # type: ignore[arg-type]
            tags={MODEL_TAG: spec.name},
        )
        return True
    if model.vector_type != spec.vector_type or (
        spec.dimension is not None and model.dimension != spec.dimension
    ):
        shape = f"{model.vector_type}" + (f", dimension {model.dimension}" if model.dimension else "")
        wanted = f"{spec.vector_type}" + (f", dimension {spec.dimension}" if spec.dimension else "")
        raise IngestError(
            f"index {name!r} holds {shape} vectors but model {spec.name!r} makes {wanted} ones; "
            "pick another --index or --model"
        )
    return False


def existing_ids(index: Index, ids: Sequence[str], namespace: str = "") -> set[str]:
    """Which of ``ids`` are stored in ``namespace`` (fetched 1,000 at a time)."""
    found: set[str] = set()
    for start in range(0, len(ids), _FETCH_BATCH):
        found.update(index.fetch(list(ids[start : start + _FETCH_BATCH]), namespace).vectors)
    return found


def ingest_chunks(
    pc: PineconeClient,
    index_name: str,
    chunks: Sequence[Chunk],
    *,
    model: str = DEFAULT_MODEL,
    namespace: str = "",
    cache: EmbeddingCache | None = None,
    sparse_encoder: BM25Encoder | None = None,
    metric: str | None = None,
    show_progress: bool | None = None,
) -> IngestReport:
    """Embed and upsert the chunks that are not stored yet; a second run with the same chunks does nothing.

    Args:
        pc: The client (embedded engine, a server, or Pinecone's cloud).
        index_name: The index; created if missing, with the model's dimension and metric.
        chunks: The records to store.
        model: The embedding model (dense or sparse).
        namespace: The namespace to write.
        cache: Dense embeddings kept on disk between runs.
        sparse_encoder: Adds BM25 sparse values to dense records, for hybrid search (use a dotproduct
            index: ``metric="dotproduct"``).
        metric: The metric of a new index (default: the model's).
        show_progress: Progress bars (default: when stderr is a terminal or in a notebook).

    Raises:
        IngestError: the index does not fit the model, or some records could not be written.
        PineconeError: the service refused a call.
    """
    report = IngestReport(index=index_name, namespace=namespace, chunks=len(chunks))
    started = time.perf_counter()
    spec = model_spec(pc, model)
    report.created_index = ensure_index(pc, index_name, spec, metric=metric)
    index = pc.index(index_name)
    stored = set() if report.created_index else existing_ids(index, [c.id for c in chunks], namespace)
    todo = [chunk for chunk in chunks if chunk.id not in stored]
    report.existing = len(chunks) - len(todo)
    report.seconds["check"] = time.perf_counter() - started
    if not todo:
        report.seconds["embed"] = report.seconds["upsert"] = 0.0
        return report

    started = time.perf_counter()
    texts = [chunk.text for chunk in todo]
    records: list[dict[str, Any]]
    if spec.vector_type == "sparse":
        sparse = embed_sparse(pc, spec, texts, show_progress=show_progress)
        report.embedded = len(texts)
        records = [
            {"id": c.id, "sparse_values": s, "metadata": c.metadata}
            for c, s in zip(todo, sparse, strict=True)
            if len(s.indices)  # a sparse record needs at least one term
        ]
    else:
        matrix, report.embedded = embed_dense(pc, spec, texts, cache=cache, show_progress=show_progress)
        extra = None if sparse_encoder is None else sparse_encoder.encode_documents(texts)
        records = []
        for position, chunk in enumerate(todo):
            record: dict[str, Any] = {"id": chunk.id, "values": matrix[position], "metadata": chunk.metadata}
            if extra is not None and len(extra[position].indices):
                record["sparse_values"] = extra[position]
            records.append(record)
    report.cached = len(texts) - report.embedded
    report.seconds["embed"] = time.perf_counter() - started

    started = time.perf_counter()
    result = index.upsert(records, namespace, show_progress=show_progress)
    report.upserted = result.upserted_count
    report.seconds["upsert"] = time.perf_counter() - started
    if not result.ok:
        raise IngestError(result.describe_failures()) from result.failed[0].error
    return report
