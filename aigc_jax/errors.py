"""One exception type for bad user input, so that the CLI can print it without a traceback."""


class ConfigError(ValueError):
  """A config, data directory, checkpoint or input that cannot work; the message says the fix."""


class DivergedError(ConfigError):
  """Training produced a NaN or infinite loss or gradient (train.nonfinite="stop")."""
