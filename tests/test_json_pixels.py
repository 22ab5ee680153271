"""The fast path for nested pixel lists must read exactly what a JSON parser reads, or decline."""

import json
import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from serve.protocols.json_pixels import parse_instances

SHAPE = (2, 3, 1)


def _general(body: bytes):
    """What the general path reads: the JSON parser, then numpy."""
    try:
        return np.asarray(json.loads(body)["instances"])
    except (ValueError, KeyError, TypeError):
        return None


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[[[1],[2],[3]],[[4],[5],[6]]]]}',
        b'{"instances":[[[1,2,3],[4,5,6]]]}',  # grayscale without the channel axis
        b' {\n "instances" : [ [ [ [ 0 ] , [ 255 ] , [ 3 ] ] , [ [ 4 ] , [ 5 ] , [ 999 ] ] ] ] }\n',
        b'{"instances": [[[1,2,3],[4,5,6]], [[7,8,9],[10,11,12]]]}',
    ],
)
def test_plain_nested_pixels_are_read(body):
    fast = parse_instances(body, SHAPE, max_images=8)
    assert fast is not None
    np.testing.assert_array_equal(fast, _general(body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[[1,2,3],[4,5]]]}',  # ragged
        b'{"instances": [[[1,2,3],[4,5,6,7]]]}',  # ragged, same count as a regular shape
        b'{"instances": [[[01,2,3],[4,5,6]]]}',  # leading zero: not JSON
        b'{"instances": [[[1 2,3],[4,5,6]]]}',  # two numbers in one slot
        b'{"instances": [[[1,,3],[4,5,6]]]}',  # an empty slot
        b'{"instances": [[[1,2,3],[4,5,6],]]}',  # trailing comma
        b'{"instances": [[[true,2,3],[4,5,6]]]}',  # a boolean
        b'{"instances": [[[1.5,2,3],[4,5,6]]]}',  # a float
        b'{"instances": [[[-1,2,3],[4,5,6]]]}',  # a sign
        b'{"instances": [[[1000,2,3],[4,5,6]]]}',  # more than three digits
        b'{"instances": [[[1,2,3],[4,5,6]]], "x": 1}',  # another key
        b'{"inputs": [[[1,2,3],[4,5,6]]]}',
        b'{"instances": [[1,2,3,4,5,6]]}',  # the right count, the wrong shape
        b'{"instances": [[[1,2,3],[4,5,6]]]',  # unbalanced
        b'{"instances": []}',
    ],
)
def test_anything_else_is_left_to_the_json_parser(body):
    assert parse_instances(body, SHAPE, max_images=8) is None


def test_a_batch_over_the_cap_is_left_to_the_general_path():
    body = json.dumps({"instances": np.zeros((3, 2, 3, 1), int).tolist()}).encode()
    assert parse_instances(body, SHAPE, max_images=2) is None
    assert parse_instances(body, SHAPE, max_images=3).shape == (3, 2, 3, 1)


_tokens = st.sampled_from(
    [b"[", b"]", b",", b" ", b"\n", b"0", b"1", b"7", b"12", b"255", b"007", b"1000", b"-", b"true", b'"', b"x"]
)


@pytest.mark.fuzz
@settings(max_examples=int(os.environ.get("KERASREG_FUZZ_EXAMPLES", "400")), deadline=None)
@given(
    images=st.lists(
        st.lists(
            st.lists(st.lists(st.integers(0, 999), min_size=1, max_size=1), min_size=3, max_size=3),
            min_size=2,
            max_size=2,
        ),
        min_size=1,
        max_size=3,
    ),
    mutation=st.lists(st.tuples(st.integers(0, 200), _tokens), max_size=3),
    spaces=st.booleans(),
)
# Found by random draws: white space inside the key was stripped, and the body read as {"instances": ...}.
@example(images=[[[[1], [2], [3]], [[4], [5], [6]]]], mutation=[(6, b" ")], spaces=False)
@example(images=[[[[1], [2], [3]], [[4], [5], [6]]]], mutation=[(4, b"\n")], spaces=True)
def test_fast_path_agrees_with_the_json_parser_or_declines(images, mutation, spaces):
    text = json.dumps({"instances": images}, separators=(", ", ": ") if spaces else (",", ":")).encode()
    for position, token in mutation:  # corrupt the text here and there
        position = min(position, len(text))
        text = text[:position] + token + text[position:]
    fast = parse_instances(text, SHAPE, max_images=8)
    if fast is not None:
        general = _general(text)
        assert general is not None and general.dtype.kind == "i"
        np.testing.assert_array_equal(fast.reshape(general.shape), general)
        assert fast.shape == general.shape
