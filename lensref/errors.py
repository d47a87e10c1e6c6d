"""The one exception type lensref raises for bad input, and the one way it warns of a deprecated name.

Every message is a single line that names what is wrong; the CLI prints it as
``error: <message>`` and exits with status 2, never with a traceback.
"""

import warnings


class LensError(ValueError):
    """Bad input or an unusable model, explained in one line."""


def warn_deprecated(old: str, new: str) -> None:
    """Warn (``DeprecationWarning``) that ``old`` is now ``new``, pointing at the code that used the old name
    (called from the deprecated property, method or module attribute itself)."""
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)
