"""Errors that mean "the user gave us something wrong".

Every message is one paragraph that names the file, tensor or word at fault and
says what was expected. The command line prints the message and exits with 2;
it never shows a traceback for these.
"""


class NumpyRefError(Exception):
    """Base class of every user-facing error of this project."""


class ConfigError(NumpyRefError):
    """A model configuration that cannot describe a valid model."""


class CheckpointError(NumpyRefError):
    """A checkpoint file that is missing, unreadable or does not fit the schema."""


class InputError(NumpyRefError):
    """Token ids or text that the model cannot take."""
