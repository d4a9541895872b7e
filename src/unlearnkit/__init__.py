"""unlearnkit: run machine-unlearning methods and evaluate them reliably."""

__version__ = "0.1.0"

from unlearnkit.errors import UnlearnkitError  # noqa: E402

__all__ = ["UnlearnkitError", "__version__"]
