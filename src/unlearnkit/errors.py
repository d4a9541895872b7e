"""User-facing errors.

Every problem the user can fix (bad split name, missing path, invalid hyperparameter) raises
:class:`UnlearnkitError` with a one-line message that names the problem and the fix. The CLI
prints it as ``error: <message>`` and exits with status 2, without a traceback.
"""


class UnlearnkitError(Exception):
    """A problem in the user's input or environment, with a message that says how to fix it."""


class NonFiniteLossError(UnlearnkitError):
    """The training loss became NaN or infinite."""
