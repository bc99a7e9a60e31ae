"""Command line: `python -m aigc_jax.main --config=experiments/NAME.py[:variant] --workdir=DIR`.

Config fields are overridden with `--config.a.b=value`; the config is locked, so an unknown key is
an error that lists the valid ones. `python -m experiments.NAME --workdir=DIR` is the shorthand.
"""

import importlib.util
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
  flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first (one process "
                    "per host on TPU pods, SLURM or with JAX_COORDINATOR_ADDRESS set).")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for processes "
                      "started by hand (with --num_processes and --process_id).")
  flags.DEFINE_integer("num_processes", 0, "Processes in the job; > 0 joins them with "
                       "jax.distributed.initialize(coordinator_address, ...).")
  flags.DEFINE_integer("process_id", 0, "This process's index, 0 .. num_processes - 1.")
  flags.mark_flags_as_required(["workdir"] + ([] if default_config else ["config"]))


def _main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Imported once the flags are parsed: --config.cpu_devices must reach jax before a backend
  # starts, and command-line errors come without the wait.
  from aigc_jax import registry, train  # pylint: disable=import-outside-toplevel
  from aigc_jax.tools import scorer, sweep  # pylint: disable=import-outside-toplevel
  if not FLAGS["verbosity"].present:  # orbax and tfds log every file operation at INFO
    logging.set_verbosity(logging.WARNING)
  config = FLAGS.config
  _command_line_duration_wins(config, sys.argv)
  import jax  # pylint: disable=import-outside-toplevel
  if config.get("cpu_devices", 0) > 0:
    jax.config.update("jax_num_cpu_devices", config.cpu_devices)  # before any backend starts
  if FLAGS.multihost or FLAGS.num_processes:
    # Explicit flags, or what jax detects itself (TPU pods, SLURM, JAX_COORDINATOR_ADDRESS ...).
    jax.distributed.initialize(**({} if not FLAGS.num_processes else dict(
        coordinator_address=FLAGS.coordinator_address, num_processes=FLAGS.num_processes,
        process_id=FLAGS.process_id)))
  try:
    config = scorer.prepare(config)  # evaluators never train: their scorers are made here
    if config.get("runner", ""):  # a study of many runs (e.g. experiments/scaling_shakespeare)
      registry.import_function(config.runner)(config, FLAGS.workdir)
    elif config.sweep:
      sweep.run(config, FLAGS.workdir)
    else:
      train.run(config, FLAGS.workdir)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  if jax.process_count() > 1:
    # Leave together, while the backends are up: left to the exit handler, a process that
    # arrives at the shutdown barrier long after the other can abort there (SIGABRT).
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices("aigc_jax.main: done")
    jax.distributed.shutdown()


DURATION = ("num_steps", "num_epochs")


def _command_line_duration_wins(config, argv) -> None:
  """`--config.train.num_steps=N` on an experiment defined in epochs (or the reverse) replaces
  the experiment's duration instead of being refused as two durations."""
  flags_given = {a.split("=", 1)[0] for a in argv}
  given = [k for k in DURATION if f"--config.train.{k}" in flags_given]
  if len(given) == 1:
    other = DURATION[1 - DURATION.index(given[0])]
    config.train[other] = type(config.train[other])(0)


def _load_config(spec: str):
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_aigc_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def _unknown_key(argv, default_config) -> str | None:
  """Names the first `--config.a.b=...` override that is not in the config, with valid keys."""
  spec = default_config
  for a in argv:
    if a.startswith("--config="):
      spec = a.split("=", 1)[1]
  if not spec:
    return None
  config = _load_config(spec)
  for a in argv:
    if not a.startswith("--config."):
      continue
    key = a[len("--config."):].split("=", 1)[0]
    node, path = config, "config"
    for part in key.split("."):
      if not hasattr(node, "keys") or part not in node:
        valid = sorted(node.keys()) if hasattr(node, "keys") else []
        return (f"Unknown config key {key!r}: {path} has no {part!r}. "
                f"Valid keys of {path}: {', '.join(valid)}.")
      node, path = node[part], f"{path}.{part}"
  return None


def _checked(fn, argv, default_config):
  """Runs a flag-parsing step; a bad `--config.x` exits with the valid keys, not a traceback."""
  try:
    return fn()
  except (AttributeError, KeyError) as e:
    print(f"error: {_unknown_key(argv, default_config) or e}", file=sys.stderr)
    sys.exit(2)


def cli(default_config: str | None = None) -> None:
  """Entry point; experiments pass their own file as the default --config."""
  if default_config:
    default_config = os.path.relpath(default_config)
  # With a default config file, ml_collections applies overrides when the flag is defined.
  _checked(lambda: _define_flags(default_config), sys.argv, default_config)
  app.run(_main, flags_parser=lambda argv: _checked(lambda: FLAGS(argv), argv, default_config))


if __name__ == "__main__":
  cli()
