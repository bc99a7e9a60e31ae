"""Objectives on one seam: `config.task = "NAME"` imports `aigc_jax.tasks.NAME` and calls `make`.

A task is a bundle of pure functions (see `Task`); `step.py` turns one into the jitted train step
and `evaluators/` call its `eval_step` and `eval_fns`.
"""

import dataclasses
from typing import Any, Callable

from aigc_jax import registry


@dataclasses.dataclass(frozen=True)
class Task:
  # init(rng, batch_spec) -> variables: {"params": ..., other collections (e.g. batch_stats)}.
  # Params may be boxed with logical axis names; the trainer unboxes them.
  init: Callable[..., Any]
  # loss(params, state, batch, rng) -> (scalar, (metrics dict, new state collections)).
  loss: Callable[..., Any]
  # eval_step(variables, batch) -> dict of per-batch sums over real (mask=1) examples,
  # including "count"; evaluators divide every sum by the total count.
  eval_step: Callable[..., Any]
  # Extra pure functions for evaluators (predict, sample, encode ...), keyed by name.
  eval_fns: dict = dataclasses.field(default_factory=dict)
  # Input keys the task reads from a batch; checked against the data before compiling.
  input_keys: tuple = ()
  # finalize(means) -> metrics: derived evaluation metrics (e.g. perplexity from the mean loss).
  finalize: Callable[[dict], dict] | None = None
  # on_eval(params, step, workdir): after each evaluation, on the first host (e.g. write samples).
  on_eval: Callable[..., Any] | None = None


def get_task(config) -> Task:
  return registry.import_member("aigc_jax.tasks", config.task, "task").make(config)
