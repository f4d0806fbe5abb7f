"""Errors raised for bad input.

Every message names the file, variable or config key at fault and says what to do.
"""


class PrecipModesError(Exception):
    """Base class: a problem with the user's input, not a bug."""


class ConfigError(PrecipModesError):
    """The configuration is invalid (message names the key path)."""


class InputDataError(PrecipModesError):
    """An input file or its contents cannot be used (message names the file/variable)."""


class DownloadError(PrecipModesError):
    """A remote file could not be fetched or verified (message names the URL)."""


class OutputError(PrecipModesError):
    """An output could not be written (disk full, permissions); nothing partial is left."""
