"""The results of ``bench/engine.py`` and what they are judged by: labels, targets, result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from _engine_data import TOP_K

if TYPE_CHECKING:
    from _engine_data import Dataset, FilterCase

TARGET_RECALL = 0.95
TARGET_FAISS_RATIO = 2.0
TARGET_BRUTE_SPEEDUP = 10.0
BRUTE_TARGET_MIN_RECORDS = 1_000_000
FRESH_TIMEOUT_S = 10.0
OURS = "ours in-process"
OURS_GRPC = "ours gRPC"
FAISS = "FAISS IVF-Flat"
BRUTE = "numpy brute force"
DEFAULT_SETTING = "server default"


@dataclass
class Series:
    """One contender at one setting: per-query latencies (seconds) and recall hits."""

    contender: str
    setting: str
    probes: str
    latencies: list[float] = field(default_factory=list)
    hits: int = 0
    first: float | None = None
    """Seconds of a first, untimed-in-the-series query (filters: evaluating the filter, copying vectors)."""

    def ms(self, q: float) -> float:
        return 1000.0 * float(np.percentile(np.asarray(self.latencies), q))

    @property
    def qps(self) -> float:
        return len(self.latencies) / sum(self.latencies)

    @property
    def recall(self) -> float:
        return self.hits / (TOP_K * len(self.latencies))


@dataclass
class Limits:
    queries: int
    budget: float
    min_queries: int


@dataclass
class Build:
    """How one contender took in a data set."""

    contender: str
    ingest_rate: float | None
    build_s: float | None
    memory: int | None
    note: str


@dataclass
class Freshness:
    contender: str
    first_query: int = 0
    trials: int = 0
    delays: list[float] = field(default_factory=list)
    queries_needed: list[int] = field(default_factory=list)
    missed: int = 0


@dataclass
class Outcome:
    """Everything measured on one data set."""

    dataset: Dataset
    clusters_reported: int
    nlist: int
    sweep: list[Series] = field(default_factory=list)
    filtered: list[tuple[FilterCase, Series]] = field(default_factory=list)
    builds: list[Build] = field(default_factory=list)
    freshness: list[Freshness] = field(default_factory=list)
    filter_memory: int | None = None

    def series(self, contender: str) -> list[Series]:
        return [s for s in self.sweep if s.contender == contender]
