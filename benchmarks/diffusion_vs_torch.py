r"""Diffusion on this CPU against the PyTorch peer users would pick: diffusers' UNet2DModel with
its DDPMScheduler, at the same shape (28x28x1, widths (1, 2, 2) x width, one residual block a
level, attention at 7x7: both have 1,112,801 parameters at width 32, 280,177 at 16), image size,
batch and sampler steps.

  python -m benchmarks.diffusion_vs_torch --torch_python=/path/to/torch-env/bin/python \
      [--config=experiments/ddpm_mnist.py:quick] [--config.model.width=32] [--sample_batch=64]

Measured (2-core AMD EPYC, jax 0.12.1, torch 2.13.0 CPU, diffusers 0.42.1, width 32, batch 64,
64 images a sampling call, median of 3 rounds): ours 82.3 training and 16.1 sampled images/s,
diffusers 99.8 and 17.4 (0.82x, 0.93x). Notes: docs/results.md, 'Diffusion and flow matching'.

Prints training images/s (the project's one train step: forward, backward, AdamW, EMA; theirs:
add_noise, forward, backward, clip, AdamW) and sampling images/s (20 DDPM ancestral steps from
noise), ours and theirs back to back in each round, and the median of the rounds. The torch side
(benchmarks/diffusion_torch_peer.py) runs in its own environment: `pip install torch==2.13.0
diffusers` in a Python 3.11 venv (the CPU build); it is never a project requirement.
"""

import copy
import json
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

from aigc_jax.models import get_model
from aigc_jax.tasks import get_task
from benchmarks.measure import measure

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/ddpm_mnist.py:quick",
                                          "Diffusion experiment config.", lock_config=False)
_TORCH = flags.DEFINE_string("torch_python", None, "Python of an environment with torch and "
                             "diffusers; empty: ours only.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Back-to-back rounds; medians are reported.")
_STEPS = flags.DEFINE_integer("steps", 10, "Train steps per timing repeat.")
_SAMPLE_BATCH = flags.DEFINE_integer("sample_batch", 250, "Images per sampling call.")
_SAMPLE_STEPS = flags.DEFINE_integer("sample_steps", 20, "Sampler steps.")


def ours(c) -> dict:
  r = measure(c, steps=_STEPS.value, repeats=3, data_steps=5)
  c = copy.deepcopy(c)
  c.sampler.update(name="ddpm", steps=_SAMPLE_STEPS.value)
  task = get_task(c)
  m = c.model
  variables = task.init(jax.random.PRNGKey(0), {"input": jax.ShapeDtypeStruct(
      (2, m.image_size, m.image_size, m.channels), jnp.float32)})
  variables = {"params": variables["params"]}  # sampling from the live weights
  n = _SAMPLE_BATCH.value
  draw = jax.jit(lambda v, k: task.eval_fns["sample"](v, k, n))
  jax.block_until_ready(draw(variables, jax.random.PRNGKey(0)))
  times = []
  for i in range(3):
    t = time.perf_counter()
    jax.block_until_ready(draw(variables, jax.random.PRNGKey(i + 1)))
    times.append(time.perf_counter() - t)
  params = sum(x.size for x in jax.tree.leaves(variables))
  return {"params": params, "train_images_per_s": r["step_rate"] * c.data.batch_size,
          "sample_images_per_s": n / statistics.median(times)}


def theirs(c) -> dict:
  m = c.model
  out = subprocess.run(
      [_TORCH.value, "benchmarks/diffusion_torch_peer.py", f"--width={m.width}",
       f"--groups={m.groups}", f"--batch={c.data.batch_size}", f"--steps={_STEPS.value}",
       f"--sample_batch={_SAMPLE_BATCH.value}", f"--sample_steps={_SAMPLE_STEPS.value}"],
      check=True, capture_output=True, text=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(_):
  c = _CONFIG.value
  m = c.model
  if m.name != "unet":
    raise app.UsageError(f"The peer is diffusers' UNet2DModel; the config's model is {m.name!r}.")
  # The shape UNet2DModel can express: no patch stem, three levels, one residual block a level.
  m.update(patch=1, multipliers=(1, 2, 2), num_res_blocks=1, dropout=0.1)
  get_model(m)  # config errors before any timing
  rows = {"ours": [], "diffusers": []}
  for r in range(_ROUNDS.value):
    rows["ours"].append(ours(c))
    if _TORCH.value:
      rows["diffusers"].append(theirs(c))
    print(f"round {r + 1}: " + "; ".join(
        f"{k} train {v[-1]['train_images_per_s']:.1f} img/s, sample "
        f"{v[-1]['sample_images_per_s']:.1f} img/s" for k, v in rows.items() if v), flush=True)
  print(f"U-Net width {m.width}, batch {c.data.batch_size}, {_SAMPLE_STEPS.value} DDPM steps "
        f"for {_SAMPLE_BATCH.value} images; jax {jax.__version__}, {jax.device_count()} "
        f"device(s); median of {_ROUNDS.value} rounds")
  med = {k: {q: statistics.median(x[q] for x in v) for q in v[0]} for k, v in rows.items() if v}
  print(f"{'':<10}{'params':>10}{'train img/s':>13}{'sample img/s':>14}")
  for k, v in med.items():
    print(f"{k:<10}{v['params']:>10,.0f}{v['train_images_per_s']:>13.1f}"
          f"{v['sample_images_per_s']:>14.1f}")
  if "diffusers" in med:
    o, t = med["ours"], med["diffusers"]
    print(f"ours / diffusers: training {o['train_images_per_s'] / t['train_images_per_s']:.2f}x, "
          f"sampling {o['sample_images_per_s'] / t['sample_images_per_s']:.2f}x")


if __name__ == "__main__":
  app.run(main)
