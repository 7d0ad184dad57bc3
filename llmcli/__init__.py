"""llmpath: see how a large language model handles text.

The package is importable without torch or transformers; those load only
when a model actually runs (see ``llmcli.models``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
