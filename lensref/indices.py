"""Layer and position indices: range checks with one-line errors, ``--layers`` parsing, and "from which layer on".

Layers run 0..L (0 = the embeddings, L = the final norm's input, i.e. the model's own output); positions index
the prompt's tokens, negative ones counting from the end as in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import LensError


def check_position(position: int, n_positions: int) -> int:
    """``position`` (negative counts from the end) as an index in ``[0, n_positions)``, or a one-line error."""
    if not -n_positions <= position < n_positions:
        raise LensError(
            f"position {position} is out of range for a prompt of {n_positions} tokens "
            f"(use {-n_positions}..{n_positions - 1})"
        )
    return position % n_positions


def check_layer(layer: int, n_layers: int, role: str = "layer") -> int:
    """``layer`` if it is in ``0..n_layers``, else a one-line error naming the ``role`` (e.g. "source layer")."""
    if not 0 <= layer <= n_layers:
        raise LensError(
            f"{role} {layer} is out of range; this model has layers 0..{n_layers} "
            "(0 = embeddings, the last = the final norm's input)"
        )
    return layer


MIDDLE = "middle"


def resolve_layer(layer: int | str, n_layers: int) -> int:
    """A layer given as an int (negative counts from the end: -1 is layer ``n_layers``) or ``"middle"``
    (``n_layers // 2``), as an index in ``0..n_layers``, or a one-line error."""
    if layer == MIDDLE:
        return n_layers // 2
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise LensError(f"a layer is an int (negative: from the end) or {MIDDLE!r}, got {layer!r}")
    return check_layer(layer + n_layers + 1 if layer < 0 else layer, n_layers)


def parse_layers(text: str | None, n_layers: int) -> list[int]:
    """``"all"``/None -> every layer; ``"0,5,10-12"`` -> [0, 5, 10, 11, 12]; negative numbers count from the end."""
    if text is None or text.strip().lower() == "all":
        return list(range(n_layers + 1))
    layers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        single = "-" not in part[1:]
        try:
            if single:
                span = [int(part)]
            else:
                cut = part.index("-", 1)
                span = list(range(int(part[:cut]), int(part[cut + 1 :]) + 1))
        except ValueError:
            raise LensError(f"cannot read layers {text!r}; write e.g. 0,5,10-15 or all") from None
        if not span:
            raise LensError(f"empty layer range {part!r} in {text!r}")
        layers.extend([resolve_layer(span[0], n_layers)] if single else [check_layer(x, n_layers) for x in span])
    return list(dict.fromkeys(layers))


def first_layer_holding(holds: Sequence[bool]) -> int | None:
    """The first layer from which ``holds[layer]`` stays true through the last layer (None if the last fails).

    "The target is top-1 from layer 27 on" means from 27 *to the end*: an early layer where it briefly led and
    then lost the lead does not count.
    """
    first = None
    for layer in range(len(holds) - 1, -1, -1):
        if not holds[layer]:
            break
        first = layer
    return first
