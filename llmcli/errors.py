"""Exceptions and exit codes.

Every error a user can cause is an ``LlmpathError``; ``llmcli.cli.main`` turns it
into one line ``Error: ...`` on stderr and the exit code below.
"""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class LlmpathError(Exception):
    """A failure the user can act on; its message is shown as one line."""

    exit_code = EXIT_ERROR


class UsageError(LlmpathError):
    """Flags or arguments that do not fit together."""

    exit_code = EXIT_USAGE


class InputError(LlmpathError):
    """Input text, IDs or token records that cannot be used."""


class ModelError(LlmpathError):
    """A model that cannot be found, pulled, converted or loaded."""


class OfflineError(ModelError):
    """A model is missing from the store and pulling is switched off."""


class IntegrityError(ModelError):
    """A downloaded or stored file whose sha256 is not the pinned one."""


class OutputError(LlmpathError):
    """An output file that cannot be written."""
