"""The one exception type that the CLI turns into a clean one-line error (exit code 2)."""


class HwbnnError(Exception):
    """A problem with user input: a bad model file, an unsupported layer, a missing path."""
