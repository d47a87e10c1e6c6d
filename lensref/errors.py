"""The one exception type lensref raises for bad input.

Every message is a single line that names what is wrong; the CLI prints it as
``error: <message>`` and exits with status 2, never with a traceback.
"""


class LensError(ValueError):
    """Bad input or an unusable model, explained in one line."""
