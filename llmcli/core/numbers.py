"""The one check of the numbers a model gives before they leave core: no NaN, no infinity.

A NaN or an infinity (weights that overflow, a dtype too narrow for the activations) would
otherwise reach a table as ``nan`` or JSON as the invalid token ``NaN``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmcli.errors import LlmpathError


class NotFiniteError(LlmpathError):
    """A model gave NaN or infinity at a named step."""


def require_finite(values: Any, what: str, model: str, *, allow_neg_inf: bool = False) -> None:
    """Raise one line naming the step when ``values`` (a torch tensor, a numpy array or
    numbers) hold NaN or infinity; ``allow_neg_inf`` lets -inf through (a log-probability
    of a token a model rules out)."""
    if hasattr(values, "detach"):
        import torch

        tensor = values.detach()
        bad = torch.isnan(tensor) | (
            torch.isposinf(tensor) if allow_neg_inf else ~torch.isfinite(tensor)
        )
        found = bool(bad.any())
    else:
        array = np.asarray(values, dtype=np.float64)
        found = bool(np.isnan(array).any() or (np.isposinf(array).any() if allow_neg_inf
                                                 else not np.isfinite(array).all()))  # fmt: skip
    if found:
        raise NotFiniteError(
            f"{model} gave NaN or infinity in {what}: its weights hold such values or they "
            "overflow in this dtype (try --dtype float32)"
        )
