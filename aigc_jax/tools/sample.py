"""Samples from any trained run whose task can sample: text, or an image grid.

  python -m aigc_jax.sample --workdir=DIR [--seed=0] [--num_samples=N]
  python -m aigc_jax.sample --workdir=DIR --prompt="ROMEO:" --max_new_tokens=500 \
      --temperature=0.8 --top_k=200 [--top_p=0.9]                    # a language model
  python -m aigc_jax.sample --workdir=DIR --num_samples=64 [--out=grid.png]   # GAN, VAE ...
  python -m aigc_jax.sample --workdir=DIR --sampler=heun --steps=20 --guidance=2 --labels=0,1,2
  python -m aigc_jax.sample --workdir=DIR --caption="a 3 above a 5" --caption="a 7" --guidance=6

Reads DIR/config.json and the best checkpoint (DIR/best/, else the latest). A language-model run
(a tokenizer in DIR) continues the prompt with the key/value-cached sampler
(aigc_jax/samplers/text.py) and prints the text; a run whose task has a `sample` function (GAN,
VAE) writes a grid of its samples (one class a row for a class-conditional model, one caption a
row for a text-to-image one) to DIR/samples/sample_seed<S>.png, or --out.
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
from aigc_jax.evaluators import grid, zero_shot
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


def encode_captions(workdir: str, config, captions: list[str]) -> np.ndarray:
  """[N, data.seq_len] ids of typed captions, by the run's tokenizer (saved in its workdir)."""
  path = os.path.join(workdir, tokenizers.WORKDIR_FILE)
  if not config.model.get("text"):
    raise ConfigError(f"--caption needs a caption-conditioned run (model.text); the run in "
                      f"{workdir} is not one.")
  if not os.path.exists(path):
    raise ConfigError(f"{path} is missing: the run saves its caption tokenizer there.")
  return zero_shot.encode_prompts(captions, tokenizers.load(path), config.data.seq_len,
                                  "--caption")


def sample_grid(workdir: str, num: int, seed: int, out: str = "", sampler: dict | None = None,
                labels: list | None = None, captions: list | None = None) -> str:
  """A grid of `num` samples of the run's task (one class a row when conditional); its path.
  `sampler` overrides the run's `sampler` section (a diffusion run's name, steps, guidance,
  eta); `labels` asks a class-conditional model for these classes (num: len(labels));
  `captions` a caption-conditioned one for these captions (a row of `num` images each)."""
  trained = checkpoint.load_workdir(workdir)
  config = trained.config
  if config.model.get("text"):
    if not captions:
      raise ConfigError(f"The run in {workdir} draws from captions: pass --caption='a 3 above "
                        "a 5' (several --caption flags for several rows).")
    ids = encode_captions(workdir, config, captions)
    with config.unlocked():  # the tokenizer's vocabulary, without the data set it came from
      config.model.vocab_size = config.model.get("vocab_size") or int(tokenizers.load(
          os.path.join(workdir, tokenizers.WORKDIR_FILE)).vocab_size)
    caption_ids = np.repeat(ids, num, axis=0)  # a row of `num` images per caption
  elif captions:
    encode_captions(workdir, config, captions)  # raises: not a caption model
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
  explicit = bool(labels) and not captions
  per = num
  if captions:
    labels, num = caption_ids, len(caption_ids)
  elif labels:
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
  if captions:  # one row per caption
    ncol = per
  elif explicit:  # the classes asked for, in order, in one row
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
  flags.DEFINE_multi_string("caption", [], "Caption-conditioned runs: a caption to draw (a row "
                            "of --num_samples images; repeat the flag for more rows).")
  f = flags.FLAGS

  def run(_):
    if not f["verbosity"].present:  # orbax logs every file it reads at INFO
      logging.set_verbosity(logging.WARNING)
    try:
      is_text = epath.Path(f.workdir, tokenizers.WORKDIR_FILE).exists() and (
          "sampler" not in checkpoint.read_config(f.workdir))  # not a caption-to-image run
      if is_text:
        for t in sample_text(f.workdir, f.prompt, f.num_samples or 1, f.seed,
                             max_new_tokens=f.max_new_tokens, temperature=f.temperature,
                             top_k=f.top_k, top_p=f.top_p):
          print(t)
          print("---------------")
      else:
        chosen = {"name": f.sampler, "steps": f.steps, "guidance": f.guidance, "eta": f.eta}
        num = f.num_samples or (8 if f.caption else 64)
        print(sample_grid(f.workdir, num, f.seed, f.out,
                          sampler={k: v for k, v in chosen.items() if v is not None},
                          labels=[int(x) for x in f.labels], captions=f.caption))
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  app.run(run, argv)


if __name__ == "__main__":
  main()
