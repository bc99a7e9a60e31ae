"""Input-pipeline throughput next to the rate the matching training step consumes it.

  python -m benchmarks.input_pipeline [--steps=10 --repeats=3]

Cases: MNIST images (cnn_mnist quick: batch 128, 28x28) and packed tiny-Shakespeare characters
at sequence lengths 256 and 1024, consumed by nanoGPT's CPU-sized GPT (4 layers, 4 heads, width
128, batch 12, the `quick` model of the GPT experiment). The pipeline side is grain's iterator
with its prefetch thread, gathered and put on the devices; the step side is the compiled step
alone. Each rate is the median of `--repeats` timings. Two more rows time the pipeline alone at
accelerator batch sizes, next to the token rates the GPT experiments aim for on one H100. Needs $AIGC_JAX_DATA (mnist/,
tinyshakespeare/).
"""

import jax
from absl import app, flags, logging

from benchmarks.measure import measure, pipeline_rate
from aigc_jax import config as config_lib
from experiments import cnn_mnist

_STEPS = flags.DEFINE_integer("steps", 10, "Train steps per timing repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats; the median is reported.")


def gpt_config(seq_len: int, batch: int = 12):
  """nanoGPT's CPU configuration of the character-level Shakespeare GPT, at `seq_len`."""
  c = config_lib.get_config(task="lm")
  c.model = dict(name="gpt", vocab_size=0, block_size=seq_len, num_layers=4, num_heads=4,
                 width=128, dropout=0.0)
  c.data.update(name="text_files/tinyshakespeare", tokenizer="char", seq_len=seq_len,
                batch_size=batch, eval_split="validation")
  c.optim.update(lr=1e-3, b2=0.99, weight_decay=0.1, grad_clip_norm=1.0)
  return c


def main(_):
  logging.set_verbosity(logging.WARNING)
  cases = [("MNIST 28x28 (cnn)", cnn_mnist.get_config("quick"), None),
           ("packed text L=256 (gpt)", gpt_config(256), 256),
           ("packed text L=1024 (gpt)", gpt_config(1024), 1024)]
  print(f"backend={jax.default_backend()} devices={jax.device_count()} "
        f"steps={_STEPS.value} repeats={_REPEATS.value}")
  print(f"{'case':<26}{'batch':>6}{'pipeline ex/s':>15}{'tokens/s':>12}{'step ex/s':>11}"
        f"{'tokens/s':>11}{'ratio':>8}")
  for name, c, seq_len in cases:
    r = measure(c, _STEPS.value, _REPEATS.value, data_steps=_STEPS.value * 20)
    b = c.data.batch_size
    data, step = r["data_rate"] * b, r["step_rate"] * b
    tok = (lambda x: f"{x * seq_len:12.0f}") if seq_len else (lambda x: f"{'-':>12}")
    print(f"{name:<26}{b:>6}{data:>15.0f}{tok(data)}{step:>11.0f}{tok(step)[1:]}"
          f"{data / step:>7.0f}x", flush=True)
  # Accelerator-sized batches, pipeline side only, against the token rates the GPT issue targets
  # on one H100 (nanoGPT's Shakespeare model at <= 5 ms a step; GPT-2 124M at 650k tokens/s).
  for name, c, target in [("packed text 64 x 256", gpt_config(256, 64), 64 * 256 / 5e-3),
                          ("packed text 16 x 1024", gpt_config(1024, 16), 650e3)]:
    rate = pipeline_rate(c, _STEPS.value * 20, _REPEATS.value) * c.data.batch_size
    print(f"{name:<26}{c.data.batch_size:>6}{rate:>15.0f}{rate * c.data.seq_len:>12.0f}"
          f"{'H100 target':>12}{target:>10.0f}{rate * c.data.seq_len / target:>7.1f}x", flush=True)


if __name__ == "__main__":
  app.run(main)
