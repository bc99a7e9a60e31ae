"""Prepares a data set without training, and prints what cleaning did.

  python -m aigc_jax.tools.prepare --data.name=text_files/web --data.data_dir=RAW \
      --data.tfds_dir=OUT --data.text.split_by=documents --data.text.delimiter='\n\n\n' \
      --data.text.clean="nfkc|whitespace|gopher_repetition|pii|dedupe_exact|dedupe_near"

Any `config.data` field of the experiments is a flag (`--data.beam_options="--runner=..."`
prepares on Apache Beam). Preparing is what a training run does on first use, so a corpus can be
cleaned once, on a bigger machine or a Beam cluster, and trained on anywhere.
"""

import json
import os

from absl import app
from ml_collections import config_flags

from aigc_jax.data import clean, sources
from aigc_jax.data.builders import text_files
from aigc_jax.errors import ConfigError
from aigc_jax import config as config_lib

_DATA = config_flags.DEFINE_config_dict("data", config_lib.get_config().data,
                                        "The data config (see aigc_jax/config.py).")


def main(argv):
  del argv
  try:
    builder = sources.get_builder(_DATA.value)
  except ConfigError as e:
    raise app.UsageError(str(e)) from None
  for name, split in builder.info.splits.items():
    print(f"{name}: {split.num_examples:,} examples, {split.num_bytes / 1e6:,.1f} MB")
  report = os.path.join(builder.data_dir, text_files.REPORT)
  if os.path.exists(report):
    print(clean.describe(json.load(open(report))))
  print(f"prepared in {builder.data_dir}")


if __name__ == "__main__":
  app.run(main)
