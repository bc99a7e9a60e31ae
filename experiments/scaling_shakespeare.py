"""Scaling laws on tiny Shakespeare: GPT sizes x training tokens, Chinchilla's fit, a prediction.

Reference: Hoffmann et al. 2022 (Chinchilla), approach 3: L(N, D) = E + A / N^alpha + B / D^beta,
fitted (aigc_jax/tools/scaling.py) to `gpt_shakespeare_char:fast` runs at six sizes and three or
four token budgets, then used to predict a larger held-out run before it trains.

Commands:
  python -m experiments.scaling_shakespeare --workdir=DIR
  python -m aigc_jax.main --config=experiments/scaling_shakespeare.py:quick --workdir=DIR

Measured (2-core CPU, jax 0.12): the full study (24 runs + 1) in 14 min 9 s,
L = 1.162 + 4.19 / N^0.250 + 42.8 / D^0.347, N_opt ~ C^0.58 [0.49, 0.74] (Chinchilla: 0.50);
the held-out 3.5M-parameter run at 819k tokens predicted 1.6387, measured 1.6342. `quick` (18 + 1
runs) in 4 min 34 s: held-out 3.1M x 205k predicted 1.8817, measured 1.8867.

Full results and notes: docs/results.md, section 'Scaling laws'.
"""

import json
import os
import time

import jax
import ml_collections

from aigc_jax import config as config_lib
from experiments import gpt_shakespeare_char

TOKENS_PER_STEP = 16 * 64  # batch x context of the fast recipe

# (layers, width): non-embedding parameters 12 x layers x width^2 (no biases, parameter-free
# norms), from 12k to 2.7M.
SIZES = ((1, 32), (2, 64), (3, 96), (4, 128), (5, 160), (6, 192))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = gpt_shakespeare_char.get_config("fast")
  c.runner = "experiments.scaling_shakespeare:study"
  c.evals = ml_collections.ConfigDict()  # the whole validation split at the end, no samples
  config_lib.add_eval(c, "validation", "metrics")
  c.train.update(log_every_steps=25, best_metric="")
  c.scaling = ml_collections.ConfigDict(dict(
      sizes=SIZES, steps=(100, 200, 400, 800),
      heldout=(8, 192), heldout_steps=800,  # 3.5M parameters: larger than any fitted run
      bootstrap=200, budgets=(1e13, 1e14, 1e15)))
  if arg == "quick":
    c.scaling.update(steps=(50, 100, 200), heldout=(7, 192), heldout_steps=200, bootstrap=100)
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of scaling_shakespeare; valid: quick, or none.")
  return c


def non_embedding_params(config) -> int:
  """Parameters of the model in `config` outside the token/position embeddings and the head."""
  from aigc_jax import models  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  model = models.get_model(config.model, vocab_size=config.model.vocab_size or 65)
  tokens = jnp.zeros((1, config.data.seq_len), jnp.int32)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), tokens)["params"]
  return int(sum(x.size for path, x in jax.tree_util.tree_leaves_with_path(shapes)
                 if str(getattr(path[0], "key", "")) not in ("wte", "wpe", "head")))


def run_config(c, layers: int, width: int, steps: int):
  """One run of the study: the base config at this size and budget."""
  r = c.copy_and_resolve_references()
  with r.unlocked():
    r.runner = ""
    del r["scaling"]
  r.model.update(num_layers=layers, width=width, num_heads=max(width // 32, 1))
  log = r.train.log_every_steps
  r.train.update(num_steps=steps, eval_every_steps=steps,
                 checkpoint_every_steps=max(log, steps // 2 // log * log))
  r.optim.warmup_steps = max(steps // 10, 1)
  return r


def _check(c) -> None:
  from aigc_jax.tools import scaling  # pylint: disable=import-outside-toplevel
  from aigc_jax.errors import ConfigError  # pylint: disable=import-outside-toplevel
  points = len(set(c.scaling.sizes)) * len(set(c.scaling.steps))
  if points < scaling.MIN_POINTS or len(set(c.scaling.sizes)) < 2 or len(set(c.scaling.steps)) < 2:
    raise ConfigError(f"scaling.sizes x scaling.steps gives {points} runs over "
                      f"{len(set(c.scaling.sizes))} sizes and {len(set(c.scaling.steps))} budgets; "
                      f"the fit has 5 parameters and needs at least {scaling.MIN_POINTS} runs over "
                      "2 or more sizes and budgets: add sizes or budgets.")
  for layers, width in list(c.scaling.sizes) + [tuple(c.scaling.heldout)]:
    if width % 32 or width % max(width // 32, 1):
      raise ConfigError(f"scaling size ({layers}, {width}): width must be a multiple of 32 "
                        "(heads of 32).")


def _train(c, workdir: str, layers: int, width: int, steps: int) -> dict:
  from aigc_jax import train  # pylint: disable=import-outside-toplevel
  r = run_config(c, layers, width, steps)
  sub = os.path.join(workdir, "runs", f"L{layers}_W{width}_S{steps}")
  t0 = time.perf_counter()
  s = train.run(r, sub)
  n = non_embedding_params(r)
  d = steps * r.data.batch_size * r.data.seq_len
  print(f"  N={n:,} D={d:,}: validation loss {s['validation_loss']:.4f} "
        f"({time.perf_counter() - t0:.0f} s)", flush=True)
  return {"layers": layers, "width": width, "steps": steps, "N": n, "D": d,
          "flops": 6.0 * n * d, "compiled_flops": s.get("flops_per_step", 0.0) * steps,
          "params": s.get("params", 0.0), "loss": s["validation_loss"]}


def study(c, workdir: str) -> dict:
  """The whole study (see the module docstring); returns what summary.json holds."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from aigc_jax import writers  # pylint: disable=import-outside-toplevel
  from aigc_jax.tools import scaling
  from aigc_jax.errors import ConfigError  # pylint: disable=import-outside-toplevel
  _check(c)
  t0 = time.perf_counter()
  grid = [(l, w, s) for (l, w) in c.scaling.sizes for s in c.scaling.steps]
  runs = []
  for i, (l, w, s) in enumerate(grid):
    print(f"[{i + 1}/{len(grid)}] {l} layers x width {w}, {s} steps", flush=True)
    runs.append(_train(c, workdir, l, w, s))
  col = lambda k: np.array([r[k] for r in runs], np.float64)  # noqa: E731
  fit = scaling.fit(col("N"), col("D"), col("loss"))
  try:
    boot = scaling.bootstrap(col("N"), col("D"), col("loss"), num=c.scaling.bootstrap,
                             seed=c.seed)
  except ConfigError as e:  # too few runs for resamples to be fittable: the fit stands alone
    print(f"No bootstrap intervals: {e}", flush=True)
    boot = {}

  # The held-out run is predicted, and the prediction stored, before it trains.
  hl, hw = c.scaling.heldout
  hs = c.scaling.heldout_steps
  h_cfg = run_config(c, hl, hw, hs)
  h_n = non_embedding_params(h_cfg)
  h_d = hs * h_cfg.data.batch_size * h_cfg.data.seq_len
  pred_path = os.path.join(workdir, "prediction.json")
  prediction = {"layers": hl, "width": hw, "steps": hs, "N": h_n, "D": h_d,
                "predicted_loss": float(fit.predict(h_n, h_d))}
  if not os.path.exists(pred_path):
    writers.atomic_write(pred_path, json.dumps(prediction, indent=1))
  with open(pred_path) as f:
    prediction = json.load(f)  # a resumed study keeps its first prediction
  print(f"held-out prediction: N={h_n:,} D={h_d:,} -> {prediction['predicted_loss']:.4f}",
        flush=True)
  held = _train(c, workdir, hl, hw, hs)
  prediction["actual_loss"] = held["loss"]
  prediction["error"] = held["loss"] - prediction["predicted_loss"]
  prediction["relative_error"] = prediction["error"] / held["loss"]

  budgets = np.array(c.scaling.budgets, np.float64)
  n_opt, d_opt, l_opt = scaling.compute_optimal(fit, budgets)
  optimal = [{"flops": float(b), "N": float(n), "D": float(d), "loss": float(l)}
             for b, n, d, l in zip(budgets, n_opt, d_opt, l_opt)]
  plots = os.path.join(workdir, "plots")
  figures = [scaling.plot_frontier(runs, fit, os.path.join(plots, "frontier.png")),
             scaling.plot_loss_vs_params(runs, fit, os.path.join(plots, "loss_vs_params.png")),
             scaling.plot_isoloss(runs, fit, os.path.join(plots, "isoloss.png"))]
  table = scaling.table_markdown(runs + [held], fit)
  summary = {"fit": {k: getattr(fit, k) for k in scaling.NAMES + ("a", "b")},
             "bootstrap": boot, "runs": runs, "heldout": prediction, "compute_optimal": optimal,
             "plots": figures, "minutes": (time.perf_counter() - t0) / 60}
  writers.atomic_write(os.path.join(workdir, "table.md"), table)
  writers.atomic_write(os.path.join(workdir, "summary.json"),
                       json.dumps(summary, indent=1, default=float))
  ci = lambda k: (f"{boot[k]['estimate']:.3f} [{boot[k]['lo']:.3f}, {boot[k]['hi']:.3f}]"  # noqa
                  if boot else f"{getattr(fit, k):.3f}")
  print(table)
  print(f"L(N, D) = {fit.E:.3f} + {fit.A:.4g} / N^{fit.alpha:.3f} + {fit.B:.4g} / D^{fit.beta:.3f}"
        f"\nalpha {ci('alpha')}, beta {ci('beta')}, N_opt ~ C^{ci('a')}, D_opt ~ C^{ci('b')}"
        f"\nheld-out N={h_n:,} D={h_d:,}: predicted {prediction['predicted_loss']:.4f}, "
        f"measured {held['loss']:.4f} ({100 * prediction['relative_error']:+.1f}%)", flush=True)
  return summary


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
