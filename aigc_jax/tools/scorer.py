"""Prepares the classifiers that score generated images (FID/IS, aigc_jax/evaluators/fid.py).

An evaluator never trains: each declared evaluator with a `classifier` experiment and an empty
`classifier_workdir` gets that experiment trained once on the run's data set (its training split;
or on the evaluator's `classifier_data` set, e.g. single digits scoring composed images) and cached under $AIGC_JAX_CACHE (default ~/.cache/aigc_jax)/classifiers/<data set>-<hash of the
classifier's config>/, then named in the run's config. `python -m aigc_jax.main` does this before
every run; by hand:

  python -m aigc_jax.tools.scorer --config=experiments/dcgan_mnist.py:quick
"""

import hashlib
import importlib
import os
import re
import sys

from absl import app, flags
from ml_collections import config_flags

from aigc_jax import registry, train
from aigc_jax.data import sources
from aigc_jax.errors import ConfigError


def cache_root() -> str:
  return os.environ.get("AIGC_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                          "aigc_jax")


def classifier_config(experiment: str, data_config):
  """The scorer's training config: experiment `experiment` on the run's data set."""
  try:
    c = importlib.import_module(experiment).get_config()
  except ImportError as e:
    raise ConfigError(f"classifier={experiment!r} is not an importable experiment module "
                      f"({e}); run from the repository root or set classifier_workdir.") from e
  for k in ("name", "data_dir", "tfds_dir", "train_split", "eval_split", "cache"):
    c.data[k] = data_config[k]
  return c


def workdir_for(experiment: str, data_config) -> str:
  """Where the scorer for (experiment, data set) is cached: named by a hash of its config."""
  c = classifier_config(experiment, data_config)
  # A local builder's version joins the key: new splits (a validation carve) mean a new scorer.
  name_, _, _ = data_config.name.partition("/")
  version = ""
  if name_ in sources.local_builders():
    version = str(registry.import_member("aigc_jax.data.builders", name_, "data set")
                  .Builder.VERSION)
  key = hashlib.sha256((c.to_json_best_effort(sort_keys=True) + version).encode()
                       ).hexdigest()[:10]
  name = re.sub(r"[^A-Za-z0-9_.-]", "_", data_config.name)
  return os.path.join(cache_root(), "classifiers", f"{name}-{key}")


def prepare(config):
  """`config` with every scoring evaluator's classifier_workdir filled in, each scorer trained
  (once) where its cache has none."""
  todo = [name for name, ec in config.evals.items()
          if "classifier" in ec and ec.classifier and not ec.classifier_workdir]
  if not todo:
    return config
  config = config.copy_and_resolve_references()
  with config.unlocked():
    for name in todo:
      ec = config.evals[name]
      data = config.data
      if ec.get("classifier_data"):  # e.g. single digits scoring a run on composed images
        data = config.data.copy_and_resolve_references()
        data.name = ec.classifier_data
      workdir = workdir_for(ec.classifier, data)
      if not os.path.exists(os.path.join(workdir, "summary.json")):
        print(f"Training the evaluation classifier ({ec.classifier}) once into {workdir} ...",
              flush=True)
        c = classifier_config(ec.classifier, data)
        c.train.progress_bar = config.train.progress_bar
        train.run(c, workdir)
      ec.classifier_workdir = workdir
  return config


def _main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    config = prepare(flags.FLAGS.config)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for name, ec in config.evals.items():
    if "classifier_workdir" in ec:
      print(f"evals.{name}.classifier_workdir={ec.classifier_workdir}")


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "An experiment's config file.",
                                  lock_config=True)
  flags.mark_flag_as_required("config")
  app.run(_main)
