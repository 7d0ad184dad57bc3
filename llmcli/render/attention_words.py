"""What an attention run is, in words: its layers as spans, the layers a rollout
multiplied, and the line that says whether the model is a decoder or an encoder.

Shared by the terminal output (``render/attention.py``), the HTML page
(``attention_pictures.py``) and the PNG grid (``attention_png.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmcli.core.attention import AttentionRun


def spans(values: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    parts: list[str] = []
    for value in values:
        if parts and value == int(parts[-1].rsplit("-", 1)[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{value}"
        else:
            parts.append(str(value))
    return ", ".join(parts)


def rollout_layers(run: AttentionRun) -> str:
    """``all 30 layers`` or ``layers 2-5`` (of 30): the layers a rollout multiplied."""
    if len(run.layers) == run.n_layers:
        return f"all {run.n_layers} layers"
    which = "layers" if len(run.layers) > 1 else "layer"
    return f"{which} {spans(run.layers)} of 0-{run.n_layers - 1}"


def kind_line(run: AttentionRun) -> str:
    """The model, whether it is a decoder (masked attention) or an encoder, and its size."""
    how = (
        "a decoder: masked (causal) attention, each token sees itself and earlier tokens"
        if run.kind == "decoder"
        else "an encoder: each token attends in both directions"
    )
    return f"{run.model} is {how}. {run.n_layers} layers x {run.n_heads} heads."
