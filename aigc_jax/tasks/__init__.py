"""Objectives on one seam: `config.task = "NAME"` imports `aigc_jax.tasks.NAME` and calls `make`.

A task is a bundle of pure functions (see `Task`); `step.py` turns its loss into the jitted train
step, and evaluators (`aigc_jax/evaluators/`, declared in `config.evals`) reach it only through
`Task.eval_fns`. A task module may also define `configure(config)`, which adds the task's own
config section (`config.<task>`) and default evaluators when an experiment picks the task
(`aigc_jax.config.get_config(task=...)`), so other runs' configs carry none of its keys.
"""

import dataclasses
from typing import Any, Callable

from aigc_jax import options, registry
from aigc_jax.errors import ConfigError

# The eval_fns names evaluators look for (a task provides those that make sense for it), each
# with how it is called: VARIABLES functions take the model's variables first and are traced
# (mixed precision casts the variables and their floating outputs), HOST ones run on the host.
#   metrics(variables, batch, rng) -> per-batch sums over real (mask=1) examples, with "count"
#   finalize(means) -> means plus derived metrics (host side, e.g. perplexity)
#   predict(variables, x) -> logits          encode(variables, x) -> features [B, F]
#   project(variables, x) -> a contrastive projection [B, D]
#   reconstruct(variables, batch, rng) -> images     sample(variables, rng, n, labels) -> images
#   decode(variables, z) -> images           log_weights(variables, batch, rng, k) -> [B, k]
#   sample_text(variables, rng, **kw) -> str
#   labels(n, grouped) -> the int labels a class-conditional sampler is asked for, or None
#   bits_per_dim(variables, batch, rng) -> [B] a stochastic bound on -log2 p(x) per dimension
#   denoise(variables, x0, labels, t, rng) -> (x_t, the model's estimate of x0) at one time t
#   embed_image(variables, x) -> [B, D] and embed_text(variables, ids) -> [B, D]: unit vectors
#   in one space (image-text models)
#   sample_audio(variables, rng, num_samples=, voice=, audio_BT=, batch=, temperature=) ->
#   [B, T] samples in [-1, 1] (audio_BT: real audio whose spectrogram a vocoder follows)
#   predict_frames(variables, given, num_future, rng) -> [B, num_future, H, W, C] the next
#   frames of given [B, T, H, W, C] (video prediction; rng draws a stochastic model's future)
#   objective(variables, batch, rng) -> {"loss": sum over the batch, "count"}: the training
#   objective on held-out data, where `metrics` costs more (a sampler's)
VARIABLES, HOST = "variables", "host"
EVAL_FNS = {"metrics": VARIABLES, "finalize": HOST, "predict": VARIABLES, "encode": VARIABLES,
            "project": VARIABLES, "reconstruct": VARIABLES, "sample": VARIABLES,
            "decode": VARIABLES, "log_weights": VARIABLES, "sample_text": VARIABLES,
            "labels": HOST, "bits_per_dim": VARIABLES, "denoise": VARIABLES,
            "embed_image": VARIABLES, "embed_text": VARIABLES, "sample_audio": VARIABLES,
            "predict_frames": VARIABLES, "objective": VARIABLES}


@dataclasses.dataclass(frozen=True)
class Player:
  """One side of a multi-player objective (a GAN's generator or critic)."""
  name: str  # its key in params; gradients flow to params[name] only
  # loss(params, state, batch, rng, step) -> (scalar, (metrics, new state collections)).
  loss: Callable[..., Any]
  # Updates per train step; each one reads its own micro-batch (1/max(repeats) of the batch).
  repeats: int = 1
  optim: Any = None  # an optim ConfigDict for this player; None: config.optim


@dataclasses.dataclass(frozen=True)
class Task:
  # init(rng, batch_spec) -> variables: {"params": ..., other collections (e.g. batch_stats)}.
  # Params may be boxed with logical axis names; the trainer unboxes them. batch_spec is the
  # batch after augmentation (config.augment), e.g. [B, 2, ...] with two views.
  init: Callable[..., Any]
  # loss(params, state, batch, rng, step) -> (scalar, (metrics dict, new state collections)).
  # `step` is the traced step number (warm-ups such as KL annealing). None when `players` is set.
  loss: Callable[..., Any] | None
  # Named pure functions (see EVAL_FNS): the only way evaluators reach a task.
  eval_fns: dict = dataclasses.field(default_factory=dict)
  # Input keys the task reads from a batch; checked against the data before compiling.
  input_keys: tuple = ()
  # Appended to the error when the data lacks one of input_keys.
  input_help: str = ""
  # check_data(examples) raises ConfigError when the data cannot work for this task (e.g. a
  # Bernoulli likelihood on values outside [0, 1]); given host arrays of the first training
  # examples, before compiling.
  check_data: Callable[[dict], None] | None = None
  # save_artifacts(workdir): files a trained workdir needs besides checkpoints (a tokenizer),
  # written on the first host before training.
  save_artifacts: Callable[[str], None] | None = None
  # Several players, updated in this order inside the one step, each with its own optimiser.
  players: tuple = ()
  # > 0: keep model_state["ema"], an exponential moving average of params[ema_of] ("" = all).
  ema_decay: float = 0.0
  ema_of: str = ""
  # Parameters that come trained from another run and are never trained here (a latent
  # diffusion model's autoencoder): pretrained(abstract params) -> {path: host arrays} fills
  # them at a fresh start (as config.init does; a resumed run restores them from its
  # checkpoint), and `fixed`, a regex over parameter paths, freezes them (as config.freeze).
  pretrained: Callable[[Any], dict] | None = None
  fixed: str = ""


def module(name: str):
  """A task module: a name under aigc_jax/tasks/, or a dotted module path of your own."""
  return registry.import_member("aigc_jax.tasks", name, "task")


def get_task(config, *, without_data: bool = False):
  """The task of `config` as the step options shape it (aigc_jax/options/: the compute dtype,
  quantisation-aware models). without_data: (task, batch spec) from the module's
  make_without_data(config), which reads no data (the ahead-of-time compiler's path)."""
  config = options.configure_task(config)
  spec = None
  if without_data:
    make = getattr(module(config.task), "make_without_data", None)
    if make is None:
      raise ConfigError(f"Task {config.task!r} cannot be built without its data: its module "
                        "has no make_without_data(config) (the lm task has one).")
    task, spec = make(config)
  else:
    task = module(config.task).make(config)
  unknown = sorted(set(task.eval_fns) - set(EVAL_FNS))
  if unknown:  # a new task's typo would otherwise only show as "evaluator needs 'encode'"
    raise ValueError(f"Task {config.task!r} names eval_fns {unknown}; known: {sorted(EVAL_FNS)}.")
  task = options.wrap_task(task, config)
  return (task, spec) if without_data else task


def configure(config) -> None:
  """Adds the section and default evaluators of `config.task`, if its module has any."""
  fn = getattr(module(config.task), "configure", None)
  if fn is not None:
    fn(config)
