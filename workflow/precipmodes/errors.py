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


class ParameterError(ValueError):
    """A numerical routine's parameter is invalid; ``parameter`` names it as the routine spells it.

    The numerics do not know config keys: the rule layer (:mod:`precipmodes.steps.decompose`)
    maps ``parameter`` to the config key and re-raises with a message naming it.
    """

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class RankError(InputDataError, ParameterError):
    """More modes or components asked for than the matrix has cells or windows."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped at its iteration limit before meeting its tolerance."""
