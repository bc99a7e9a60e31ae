"""Objectives on one seam: `config.task = "NAME"` imports `aigc_jax.tasks.NAME` and calls `make`.

A task is a bundle of pure functions (see `Task`); `step.py` turns one into the jitted train step
and `evaluators/` call its `eval_step` and `eval_fns`.
"""

import dataclasses
from typing import Any, Callable

from aigc_jax import registry


@dataclasses.dataclass(frozen=True)
class Player:
  """One side of a multi-player objective (a GAN's generator or critic)."""
  name: str  # its key in params; gradients flow to params[name] only
  # loss(params, state, batch, rng) -> (scalar, (metrics, new state collections)).
  loss: Callable[..., Any]
  # Updates per train step; each one reads its own micro-batch (1/max(repeats) of the batch).
  repeats: int = 1
  optim: Any = None  # an optim ConfigDict for this player; None: config.optim


@dataclasses.dataclass(frozen=True)
class Task:
  # init(rng, batch_spec) -> variables: {"params": ..., other collections (e.g. batch_stats)}.
  # Params may be boxed with logical axis names; the trainer unboxes them.
  init: Callable[..., Any]
  # loss(params, state, batch, rng) -> (scalar, (metrics dict, new state collections)).
  # None when `players` is set.
  loss: Callable[..., Any] | None
  # eval_step(variables, batch) -> dict of per-batch sums over real (mask=1) examples,
  # including "count"; evaluators divide every sum by the total count.
  eval_step: Callable[..., Any]
  # Extra pure functions for evaluators (predict, sample, encode ...), keyed by name.
  eval_fns: dict = dataclasses.field(default_factory=dict)
  # Input keys the task reads from a batch; checked against the data before compiling.
  input_keys: tuple = ()
  # finalize(means) -> metrics: derived evaluation metrics (e.g. perplexity from the mean loss).
  finalize: Callable[[dict], dict] | None = None
  # on_eval(variables, step, workdir) -> dict or None: after each evaluation, on every host
  # (sampling may be sharded); it writes files on the first host and returns extra metrics.
  on_eval: Callable[..., Any] | None = None
  # Several players, updated in this order inside the one step, each with its own optimiser.
  players: tuple = ()
  # > 0: keep model_state["ema"], an exponential moving average of params[ema_of] ("" = all).
  ema_decay: float = 0.0
  ema_of: str = ""
  # Appended to the error when the data lacks one of input_keys.
  input_help: str = ""


def get_task(config) -> Task:
  return registry.import_member("aigc_jax.tasks", config.task, "task").make(config)
