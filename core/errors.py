"""The errors a user can fix, and the exit codes every command and job shares.

Schedulers and CI branch on exit codes, so they mean the same everywhere: 2 is "fix your input or
configuration", 1 is "something broke", 3 is "the platform said no" (the gate kept the champion,
the drift job found drift). Every error a user can act on derives from :class:`UserError`, and the
CLI maps that one class to exit code 2; no error poses as another to borrow its code.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    ok = 0
    failure = 1
    user_error = 2
    declined = 3  # the gate rejected the challenger, or the drift job decided drift


class UserError(Exception):
    """Something the user can fix: their data, their configuration, the registry's state."""


class DataValidationError(UserError, ValueError):
    """The dataset breaks the contract; the message says which rows and columns, and why."""

    def __init__(self, message: str, failure_cases: Any = None) -> None:
        super().__init__(message)
        self.failure_cases = failure_cases  # pandera's table of failures, per row where it can tell


class RegistryError(UserError):
    """The registry does not hold what was asked for (no such alias, nothing to roll back to)."""


class ConfigurationError(UserError):
    """Settings or options that cannot work together; the message names them."""
