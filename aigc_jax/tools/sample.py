"""Samples from any trained run whose task can sample: text, or an image grid.

  python -m aigc_jax.sample --workdir=DIR [--seed=0] [--num_samples=N]
  python -m aigc_jax.sample --workdir=DIR --prompt="ROMEO:" --max_new_tokens=500 \
      --temperature=0.8 --top_k=200 [--top_p=0.9]                    # a language model
  python -m aigc_jax.sample --workdir=DIR --num_samples=64 [--out=grid.png]   # GAN, VAE ...
  python -m aigc_jax.sample --workdir=DIR --sampler=heun --steps=20 --guidance=2 --labels=0,1,2

Reads DIR/config.json and the best checkpoint (DIR/best/, else the latest). A language-model run
(a tokenizer in DIR) continues the prompt with the key/value-cached sampler
(aigc_jax/samplers/text.py) and prints the text; a run whose task has a `sample` function (GAN,
VAE) writes a grid of its samples (one class a row for a class-conditional model) to
DIR/samples/sample_seed<S>.png, or --out.
"""

import os
import sys

from absl import app, flags, logging
from etils import epath
import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import checkpoint, tasks
from aigc_jax.data import tokenizers
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import grid
from aigc_jax.samplers import text


def load_text_workdir(workdir: str):
  """(config, model, params, tokenizer) of a trained language-model workdir."""
  trained = checkpoint.load_workdir(workdir)
  tok = tokenizers.load(os.path.join(workdir, tokenizers.WORKDIR_FILE))
  model = trained.model(vocab_size=trained.config.model.vocab_size or tok.vocab_size)
  return trained.config, model, trained.variables["params"], tok


def sample_text(workdir: str, prompt: str, num: int, seed: int, **kw) -> list[str]:
  _, model, params, tok = load_text_workdir(workdir)
  ids = jnp.asarray(np.tile(tok.encode(prompt)[None], (num, 1)), jnp.int32)
  out = text.generate(model, params, ids, jax.random.PRNGKey(seed), **kw)
  return [tok.decode(row) for row in np.asarray(out)]


def _value_range(config) -> tuple:
  """The samples' range, as the run's own sample grid shows them ([-1, 1] by default)."""
  for ec in config.evals.values():
    if ec.get("type") == "sample_grid":
      return tuple(ec.value_range)
  return (-1.0, 1.0)


def sample_grid(workdir: str, num: int, seed: int, out: str = "", sampler: dict | None = None,
                labels: list | None = None) -> str:
  """A grid of `num` samples of the run's task (one class a row when conditional); its path.
  `sampler` overrides the run's `sampler` section (a diffusion run's name, steps, guidance,
  eta); `labels` asks a class-conditional model for these classes (num: len(labels))."""
  trained = checkpoint.load_workdir(workdir)
  config = trained.config
  if sampler:
    if "sampler" not in config:
      raise ConfigError(f"Task {config.task!r} of {workdir} has no sampler options "
                        f"({', '.join('--' + k for k in sampler)}); they apply to diffusion runs.")
    config.sampler.update(sampler)
  task = tasks.get_task(config)
  if "sample" not in task.eval_fns:
    raise ConfigError(f"Task {config.task!r} of {workdir} cannot sample (its eval_fns: "
                      f"{sorted(task.eval_fns)}).")
  default = task.eval_fns.get("labels", lambda n, grouped: None)
  explicit = bool(labels)
  if labels:
    if default(1, True) is None:
      raise ConfigError(f"--labels needs a class-conditional model; the run in {workdir} is "
                        "unconditional.")
    k = config.model.num_classes
    if min(labels) < 0 or max(labels) >= k:
      raise ConfigError(f"--labels={labels}: classes must be in 0..{k - 1}.")
    labels = np.asarray(labels, np.int32)
    num = len(labels)
  else:
    labels = default(num, True)
  draw = jax.jit(lambda v, k: task.eval_fns["sample"](v, k, num, labels))
  images = jax.device_get(draw(trained.variables, jax.random.PRNGKey(seed)))
  path = out or os.path.join(workdir, "samples", f"sample_seed{seed}.png")
  if explicit:  # the classes asked for, in order, in one row
    ncol = min(num, 16)
  elif labels is not None:
    ncol = int(np.ceil(num / len(np.unique(labels))))
  else:
    ncol = int(np.ceil(np.sqrt(num)))
  grid.save(images, path, ncol=ncol, value_range=_value_range(config))
  return path


def main(argv=None):
  flags.DEFINE_string("workdir", None, "A trained workdir.", required=True)
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_integer("num_samples", 0, "Samples drawn in one batch (0: 1 text, 64 images).")
  flags.DEFINE_string("out", "", "Image grids: where to write the PNG.")
  flags.DEFINE_string("prompt", "\n", "Text: what to continue.")
  flags.DEFINE_integer("max_new_tokens", 500, "Text: tokens to sample.")
  flags.DEFINE_float("temperature", 0.8, "Text: softmax temperature; 0 is greedy.")
  flags.DEFINE_integer("top_k", 200, "Text: sample from the k most likely tokens (0: all).")
  flags.DEFINE_float("top_p", 1.0, "Text: nucleus sampling mass (1: off).")
  flags.DEFINE_string("sampler", None, "Diffusion: ddpm | ddim | euler | heun | dpm++2m.")
  flags.DEFINE_integer("steps", None, "Diffusion: sampler steps.")
  flags.DEFINE_float("guidance", None, "Diffusion: classifier-free guidance weight (1: none).")
  flags.DEFINE_float("eta", None, "Diffusion: ddim's noise (0: deterministic).")
  flags.DEFINE_list("labels", [], "Class-conditional runs: the classes to draw, e.g. 0,1,2.")
  f = flags.FLAGS

  def run(_):
    if not f["verbosity"].present:  # orbax logs every file it reads at INFO
      logging.set_verbosity(logging.WARNING)
    try:
      if epath.Path(f.workdir, tokenizers.WORKDIR_FILE).exists():
        for t in sample_text(f.workdir, f.prompt, f.num_samples or 1, f.seed,
                             max_new_tokens=f.max_new_tokens, temperature=f.temperature,
                             top_k=f.top_k, top_p=f.top_p):
          print(t)
          print("---------------")
      else:
        chosen = {"name": f.sampler, "steps": f.steps, "guidance": f.guidance, "eta": f.eta}
        print(sample_grid(f.workdir, f.num_samples or 64, f.seed, f.out,
                          sampler={k: v for k, v in chosen.items() if v is not None},
                          labels=[int(x) for x in f.labels]))
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  app.run(run, argv)


if __name__ == "__main__":
  main()
