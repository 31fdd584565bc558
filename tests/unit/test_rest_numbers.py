"""The REST data plane's parsing of JSON number lists: malformed lists are 400s, never 500s."""

from __future__ import annotations

import numpy as np
import pytest

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.json_input import number_array


@pytest.mark.parametrize(
    "value",
    [
        [1, [2], 3, 4],  # ragged nesting: numpy refuses to build the array (found by the fuzzer)
        [[1, 2], [3]],
        [[1, 2], [3, 4]],
        [1, "2"],
        [1, None],
        [True, False],
        [2**70],
        {"0": 1},
        "1,2",
    ],
)
def test_malformed_number_lists_are_invalid_arguments(value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        number_array(value, "values")


def test_number_lists_become_arrays() -> None:
    assert np.array_equal(number_array([1, 2.5, -3], "values"), [1.0, 2.5, -3.0])
    assert number_array(None, "values") == []
    assert number_array([], "values") == []
