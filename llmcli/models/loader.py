"""Load a model's weights for the commands that run it (embed, attention, fewshot, walk).

torch and transformers are imported here only when a function is called, as in every
module that runs a model (core's, and ``models/convert.py``): never at import time.
Weights are read from safetensors files only (nothing is unpickled) and model
code from the hub is never run unless the caller asks (``trust_remote_code``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmcli.errors import ModelError, UsageError
from llmcli.models.resolve import ResolvedModel

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class LoadedModel:
    """A model ready to run, and where it runs."""

    label: str
    model: Any  # a transformers PreTrainedModel, in eval mode
    device: Any  # torch.device of its input embeddings
    dtype: Any  # torch.dtype
    decoder: bool  # causal (masked) attention: each token sees only earlier ones
    resolved: ResolvedModel

    @property
    def kind(self) -> str:
        return "decoder" if self.decoder else "encoder"


def pick_device(name: str = "auto") -> str:
    """``auto`` takes cuda, then mps, then cpu; an explicit device must exist."""
    import torch

    if name not in DEVICES:
        raise UsageError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    has_cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if name == "cuda" and not has_cuda:
        raise ModelError("--device cuda: no CUDA device is available here")
    if name == "mps" and not has_mps:
        raise ModelError("--device mps: no Apple GPU (MPS) is available here")
    return name


def _torch_dtype(name: str) -> Any:
    import torch

    if name not in DTYPES:
        raise UsageError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
    if name == "auto":
        # The stored weights are float32 (4-bit values are exact there): keep them.
        return torch.float32
    return getattr(torch, name)


def require_weights(resolved: ResolvedModel) -> None:
    """Refuse, before anything is read, a model with no safetensors weights: a tokenizer
    only, or weights only as pickle files (unpickling can run code)."""
    pickle_suffixes = (".bin", ".pt", ".pth", ".ckpt")
    pickled = [p.name for p in resolved.path.glob("*") if p.suffix in pickle_suffixes]
    if not any(resolved.path.glob("*.safetensors")) and pickled:
        raise ModelError(
            f"{resolved.label} has weights only as pickle files ({', '.join(sorted(pickled))}); "
            "llmpath reads safetensors only, since unpickling can run code: convert them first"
        )
    if not resolved.has_weights:
        raise ModelError(
            f"{resolved.label} is a tokenizer only, with no weights; use a model with "
            "weights: smollm2 or gemma3-270m (decoders), or minilm (an encoder)"
        )
    if not any(resolved.path.glob("*.safetensors")):
        raise ModelError(f"{resolved.label} has no safetensors weights in {resolved.path}")


def load_model(
    resolved: ResolvedModel,
    *,
    device: str = "auto",
    dtype: str = "auto",
    attention: str | None = None,
    device_map: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load the weights of a resolved model onto a device.

    ``attention="eager"`` is needed where attention weights are read: the default
    SDPA kernel does not return them.
    """
    require_weights(resolved)
    if trust_remote_code and resolved.source == "hub":
        # Only data files come from the hub (never code), so the model's own code could
        # not run: say so rather than fail later in transformers.
        raise UsageError(
            f"--trust-remote-code cannot work with the hub id {resolved.label}: llmpath "
            "downloads only a model's data files, never its code; download the model with its "
            "code yourself and pass its folder with -m"
        )
    folder = resolved.path
    import transformers
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    target = pick_device(device)
    torch_dtype = _torch_dtype(dtype)
    try:
        config = AutoConfig.from_pretrained(
            str(folder), trust_remote_code=trust_remote_code, local_files_only=True
        )
    except Exception as exc:
        raise ModelError(f"cannot read the config of {resolved.label}: {exc}") from exc
    architectures = getattr(config, "architectures", None) or []
    # Causal language models: LlamaForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel, ...
    decoder = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    cls = AutoModelForCausalLM if decoder else AutoModel
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype,
        "use_safetensors": True,
        "trust_remote_code": trust_remote_code,
        "local_files_only": True,
    }
    if attention is not None:
        kwargs["attn_implementation"] = attention
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = cls.from_pretrained(str(folder), **kwargs)
    except Exception as exc:
        raise ModelError(f"cannot load the weights of {resolved.label}: {exc}") from exc
    if device_map is None:
        model.to(target)  # type: ignore[arg-type]
    model.eval()
    embeddings = model.get_input_embeddings()
    return LoadedModel(
        label=resolved.label,
        model=model,
        device=embeddings.weight.device,
        dtype=torch_dtype,
        decoder=decoder,
        resolved=resolved,
    )
