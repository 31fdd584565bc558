"""Fuzzing the filter parser and the metadata validator in-process.

Every input must parse or raise :class:`InvalidArgumentError` (a 400), never another exception; a
parsed filter must evaluate against arbitrary metadata without raising.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.filters import filter_mask, parse_filter
from pinecone_rag.server.metadata import check_metadata_size, validate_metadata, validate_metadata_batch

from .strategies import json_values, mutated
from .support import FUZZ, TALLY

FILTERS = [
    {"genre": "drama"},
    {"genre": {"$in": ["drama", "comedy"]}, "year": {"$gte": 2000, "$lt": 2030}},
    {"$and": [{"a": {"$exists": True}}, {"$or": [{"b": {"$ne": 1}}, {"c": {"$nin": ["x"]}}]}]},
    {"$or": [{"tags": "x"}, {"tags": {"$in": ["y"]}}, {"flag": True}, {"n": {"$lte": 1.5}}]},
]
METADATA = [
    {"genre": "drama", "year": 2020, "rating": 4.5, "tags": ["a", "b"], "seen": False},
    {"k": "v" * 100, "n": -1, "empty": [], "u": "é🙂"},
]
_records = st.lists(st.sampled_from(METADATA).flatmap(mutated) | json_values | st.none(), max_size=5)


@given(raw=st.sampled_from(FILTERS).flatmap(mutated) | json_values, records=_records)
@FUZZ
def test_fuzz_filter_parser(raw: Any, records: list[Any]) -> None:
    try:
        parsed = parse_filter(raw)
    except InvalidArgumentError as error:
        TALLY.note("rejected (400)")
        assert (error.status, bool(error.message)) == (400, True)  # noqa: PT017 - any input may fail
        return
    TALLY.note("parsed")
    metadata = [record if isinstance(record, dict) else None for record in records]
    mask = filter_mask(parsed, metadata)
    assert mask.shape == (len(metadata),)


@given(raw=st.sampled_from(METADATA).flatmap(mutated) | json_values, record_id=st.text(max_size=20))
@FUZZ
def test_fuzz_metadata_validator(raw: Any, record_id: str) -> None:
    try:
        single = validate_metadata(raw, record_id=record_id)
    except InvalidArgumentError as error:
        TALLY.note("rejected (400)")
        assert error.status == 400  # noqa: PT017 - any input may fail
        single_failed = True
    else:
        TALLY.note("valid")
        single_failed = False
        if single is not None:
            try:
                check_metadata_size(single, record_id=record_id)
            except InvalidArgumentError as error:
                assert error.status == 400  # noqa: PT017 - any input may fail
    # The batch path (a fast path for normal-form metadata) agrees with the one-by-one path.
    try:
        batch = validate_metadata_batch([raw], [record_id])
    except InvalidArgumentError:
        assert single_failed
    else:
        assert not single_failed
        assert batch == [single]
