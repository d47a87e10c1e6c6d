"""Layer and position indices: the ranges accepted, the one-line errors, ``--layers`` parsing, "from which layer on"."""

import pytest

from lensref import LensError
from lensref.indices import check_layer, check_position, first_layer_holding, parse_layers, resolve_layer


def one_line_error(call, *args, match: str) -> str:
    with pytest.raises(LensError, match=match) as caught:
        call(*args)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_check_position_takes_python_indices_and_names_the_range():
    assert [check_position(p, 4) for p in (0, 3, -1, -4)] == [0, 3, 3, 0]
    for bad in (4, -5):
        message = one_line_error(check_position, bad, 4, match=rf"^position {bad} is out of range")
        assert message.endswith("for a prompt of 4 tokens (use -4..3)")


def test_check_layer_accepts_0_to_L_and_names_the_role():
    assert [check_layer(x, 3) for x in (0, 1, 3)] == [0, 1, 3]
    assert one_line_error(check_layer, 4, 3, match="^layer 4 is out of range") == (
        "layer 4 is out of range; this model has layers 0..3 (0 = embeddings, the last = the final norm's input)"
    )
    one_line_error(check_layer, -1, 3, match="^layer -1 is out of range")
    one_line_error(
        check_layer, 7, 3, "source layer", match="^source layer 7 is out of range; this model has layers 0..3"
    )


def test_resolve_layer():
    """Ints (negative from the end: -1 is layer L) and "middle" (L // 2); anything else is one line."""
    assert [resolve_layer(s, 3) for s in (0, 1, "middle", -1, -4, 3)] == [0, 1, 1, 3, 0, 3]
    assert [resolve_layer("middle", n) for n in (3, 4, 30)] == [1, 2, 15]
    for bad, message in [(4, "layer 4 is out of range"), (-5, "layer -1 is out of range"), (True, "got True")]:
        one_line_error(resolve_layer, bad, 3, match=message)
    one_line_error(resolve_layer, "2", 3, match=r"^a layer is an int \(negative: from the end\) or 'middle', got '2'$")
    one_line_error(resolve_layer, 1.0, 3, match="got 1.0")


def test_parse_layers():
    assert parse_layers(None, 3) == [0, 1, 2, 3] and parse_layers("all", 3) == [0, 1, 2, 3]
    assert parse_layers(" ALL ", 2) == [0, 1, 2]
    assert parse_layers("0, 2-3, -1", 3) == [0, 2, 3]  # duplicates dropped, first occurrence kept
    assert parse_layers("3,1", 3) == [3, 1]  # in the order given
    assert parse_layers("-2", 3) == [2] and parse_layers("1-1", 3) == [1]
    for bad, message in [
        ("5", "^layer 5 is out of range"),
        ("0-5", "^layer 4 is out of range"),
        ("a", r"^cannot read layers 'a'; write e\.g\. 0,5,10-15 or all$"),
        ("1-x", "^cannot read layers '1-x'"),
        ("", "^cannot read layers ''"),
        ("3-1", r"^empty layer range '3-1' in '3-1'$"),
        ("-1-2", "^layer -1 is out of range"),  # a span's start may be negative: it is cut at the next '-'
        ("1--2", "^empty layer range '1--2'"),  # and its end too: 1 to -2 is empty, not unreadable
    ]:
        one_line_error(parse_layers, bad, 3, match=message)


def test_first_layer_holding_counts_only_a_run_that_reaches_the_last_layer():
    assert first_layer_holding([False, True, True]) == 1
    assert first_layer_holding([True, True, True]) == 0
    assert first_layer_holding([True, False, True, True]) == 2  # an early lead that was lost does not count
    assert first_layer_holding([True, True, False]) is None
    assert first_layer_holding([]) is None
