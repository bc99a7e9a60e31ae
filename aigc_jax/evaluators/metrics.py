"""The task's own metrics over a whole split: the means of `eval_fns["metrics"]` sums.

Every example counts once (padding masked); the task's `finalize` adds derived metrics
(perplexity, bits per character ...). A sum may be a vector (a histogram), which `finalize`
turns into scalars. `fn` names another task function of the same form: "objective" scores the
training objective alone where `metrics` samples (a stochastic video predictor's validation).
"""

import jax
import numpy as np

# augment: ops applied to every batch with a fixed key (see Context.batches).
DEFAULTS = {"augment": "", "fn": "metrics"}


def make(name, ec, ctx):
  fn_name = ec.get("fn", "metrics")  # video_prediction's ec has no fn
  fn = ctx.fn(fn_name, name)
  finalize = ctx.task.eval_fns.get("finalize") if fn_name == "metrics" else None
  step_fn = jax.jit(fn, in_shardings=(ctx.variables_sharding, ctx.batch_sharding, None))
  ctx.split(ec.split)  # loaded (and checked) before compiling the train step

  def run(variables, step, rng):
    del step
    totals = None
    for i, batch in enumerate(ctx.batches(ec.split, ec.batch_size, ec.augment)):
      sums = step_fn(variables, batch, jax.random.fold_in(rng, i))
      totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
    totals = {k: np.asarray(v, np.float64) for k, v in jax.device_get(totals).items()}
    count = float(totals.pop("count"))
    means = {k: float(v) / count if v.ndim == 0 else v / count for k, v in totals.items()}
    return finalize(means) if finalize else means

  return run
