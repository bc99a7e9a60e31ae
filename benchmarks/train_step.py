"""Prints the train step's speed for an experiment next to the input pipeline's.

  python -m benchmarks.train_step --config=experiments/cnn_mnist.py:quick
  python -m benchmarks.train_step --config=experiments/mnist1d.py --config.model.name=gru

Times the compiled step alone (random inputs of the right shapes, state donated) and the grain
pipeline alone, each as the median of several repeats, so either side's limit shows.
"""

import jax
from absl import app, flags
from ml_collections import config_flags

from benchmarks.measure import measure

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.", lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 50, "Steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Repeats; the median is reported.")


def main(_):
  c = _CONFIG.value
  if c.get("cpu_devices", 0) > 0:
    jax.config.update("jax_num_cpu_devices", c.cpu_devices)
  r = measure(c, _STEPS.value, _REPEATS.value)
  b = c.data.batch_size
  print(f"model={c.model.name} batch={b} devices={r['devices']} backend={jax.default_backend()}")
  print(f"compile: {r['compile_s']:.2f} s")
  print(f"train step: {1e3 / r['step_rate']:.2f} ms  ({r['step_rate']:.1f} steps/s, "
        f"{r['step_rate'] * b:.0f} ex/s)")
  print(f"input pipeline: {1e3 / r['data_rate']:.3f} ms/batch  ({r['data_rate'] * b:.0f} ex/s, "
        f"{r['data_rate'] / r['step_rate']:.0f}x the step's consumption)")


if __name__ == "__main__":
  app.run(main)
