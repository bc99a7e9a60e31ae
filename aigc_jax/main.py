"""Command line: `python -m aigc_jax.main --config=experiments/NAME.py[:variant] --workdir=DIR`.

Config fields are overridden with `--config.a.b=value`; the config is locked, so an unknown key is
an error that lists the valid ones. `python -m experiments.NAME --workdir=DIR` is the shorthand.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from aigc_jax.errors import ConfigError

FLAGS = flags.FLAGS


def _define_flags(default_config: str | None) -> None:
  config_flags.DEFINE_config_file(
      "config", default_config, "Experiment config file (experiments/NAME.py[:variant]).",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "Where checkpoints, metrics, plots and samples go.")
  flags.mark_flags_as_required(["workdir"] + ([] if default_config else ["config"]))


def _main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  from aigc_jax import sweep, train  # pylint: disable=import-outside-toplevel
  if not FLAGS["verbosity"].present:  # orbax and tfds log every file operation at INFO
    logging.set_verbosity(logging.WARNING)
  config = FLAGS.config
  try:
    if config.sweep:
      sweep.run(config, FLAGS.workdir)
    else:
      train.run(config, FLAGS.workdir)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def cli(default_config: str | None = None) -> None:
  """Entry point; experiments pass their own file as the default --config."""
  if default_config:
    default_config = os.path.relpath(default_config)
  _define_flags(default_config)
  app.run(_main)


if __name__ == "__main__":
  cli()
