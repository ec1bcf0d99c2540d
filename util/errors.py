"""The one exception type i2i raises for bad input.

Drivers (train.py, test.py, ...) catch `I2IError` and print its message as one line, without a
traceback. Each message names the file or option at fault and says how to fix it.
"""


class I2IError(Exception):
    """A user-facing error: the message alone tells the user what is wrong and what to do."""


class PluginImportError(I2IError):
    """A plugin or a file of the reference's convention (models/foo_model.py) failed to import."""


class WriteError(I2IError, OSError):
    """A file could not be written (a full disk, a read-only folder); the previous file, if any, is intact."""
