"""Scaling laws on tiny Shakespeare: GPT sizes x training tokens, Chinchilla's fit, a prediction.

Reference: Hoffmann et al. 2022 (Chinchilla), approach 3: L(N, D) = E + A / N^alpha + B / D^beta,
fitted (aigc_jax/tools/scaling.py) to `gpt_shakespeare_char:fast` runs at six sizes (12k-786k
non-embedding parameters) by three token budgets (102k-410k), then used to predict a held-out run
4.5x beyond the largest fitted N and 2x beyond its D (8 x 192: 3.54M parameters at 819k tokens),
trained with seeds 0, 1 and 2. The prediction is written to DIR/prediction.json before any
held-out seed trains (the study refuses to predict once DIR/heldout/ exists), beside two naive
predictors: the nearest fitted run's loss, and L(N) fitted alone at the largest D. `quick` is
scaled alike: 12k-332k by 51k-205k, held out 5 x 160 (1.54M, 4.6x) at 410k tokens (2x).

Commands:
  python -m experiments.scaling_shakespeare --workdir=DIR
  python -m aigc_jax.main --config=experiments/scaling_shakespeare.py:quick --workdir=DIR

Measured (2-core AMD EPYC CPU, jax 0.12.1, test loss; both studies on a shared machine, so the
wall times say little): the full study (18 runs + 3 seeds) in 70 min 52 s,
L = 1.480 + 1.766 / N^0.151 + 1477 / D^0.711, N_opt ~ C^0.825 [0.412, 0.941] (Chinchilla: 0.46
by approach 3, 0.50 by approach 1; both inside); held-out 3.54M x 819k 1.7741 +- 0.0040 (3
seeds), predicted 1.7539 [1.6838, 1.8026] by the fit (-0.020, 5.0 seed stds), 1.8796 by the
nearest fitted run (+0.105), 1.8600 by L(N) alone (+0.086). `quick` (18 + 3 runs) in 22 min 23 s:
L = 0.000 + 2.27 / N^0.208 + 8.00 / D^0.121 (E at 0: budgets 4x apart tie E to beta),
N_opt ~ C^0.37 [0.19, 0.82]; held-out 1.8563 +- 0.0102, predicted 1.7993 [1.7829, 1.8616] by the
fit (-0.057, 5.6 seed stds), 1.9851 by the nearest run (+0.129), 1.9420 by L(N) alone (+0.086).

Full results and notes: docs/results.md, section 'Scaling laws'.
"""

import json
import os
import time

import jax
import ml_collections

from aigc_jax import config as config_lib
from experiments import gpt_shakespeare_char

# (layers, width): non-embedding parameters 12 x layers x width^2 (no biases, parameter-free
# norms) plus a few mixing scalars; heads of 32.
SIZES = ((1, 32), (1, 64), (2, 64), (2, 96), (3, 96), (4, 128))  # 12k to 786k
QUICK_SIZES = ((1, 32), (2, 32), (1, 64), (2, 64), (2, 96), (3, 96))  # 12k to 332k
# The held-out run must lie this far beyond the largest fitted run, in N and in D: nearer, the
# law's N and D terms barely move (a 1.33x step in N moved the N term 0.007 nats, about the seed
# noise), and a small error tests little.
MIN_N_RATIO, MIN_D_RATIO = 4.0, 2.0
# Chinchilla's compute-optimal exponent a (N_opt ~ C^a): approach 3 (the fit used here), and
# approach 1 (0.50, the value usually quoted).
CHINCHILLA_A = {"approach_3": 0.46, "approach_1": 0.50}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = gpt_shakespeare_char.get_config("fast")
  c.runner = "experiments.scaling_shakespeare:study"
  c.evals = ml_collections.ConfigDict()  # the whole test split at the end, no samples
  config_lib.add_eval(c, "test", "metrics")
  c.train.update(log_every_steps=25, best_metric="")
  c.scaling = ml_collections.ConfigDict(dict(
      sizes=SIZES, steps=(100, 200, 400),
      # 3.54M parameters (4.5x the largest fitted N) at 819k tokens (2x the largest fitted D)
      heldout=(8, 192), heldout_steps=800, heldout_seeds=(0, 1, 2),
      bootstrap=200, bootstrap_starts=4, budgets=(1e13, 1e14, 1e15)))
  if arg == "quick":  # scaled alike: 1.54M parameters (4.6x) at 410k tokens (2x)
    c.scaling.update(sizes=QUICK_SIZES, steps=(50, 100, 200), heldout=(5, 160),
                     heldout_steps=400, bootstrap=100)
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


def run_config(c, layers: int, width: int, steps: int, seed: int | None = None):
  """One run of the study: the base config at this size and budget (and seed, if given)."""
  r = c.copy_and_resolve_references()
  with r.unlocked():
    r.runner = ""
    del r["scaling"]
  r.model.update(num_layers=layers, width=width, num_heads=max(width // 32, 1))
  log = r.train.log_every_steps
  r.train.update(num_steps=steps, eval_every_steps=steps,
                 checkpoint_every_steps=max(log, steps // 2 // log * log))
  r.optim.warmup_steps = max(steps // 10, 1)
  if seed is not None:
    r.seed = seed
  return r


def _check(c) -> None:
  from aigc_jax.tools import scaling  # pylint: disable=import-outside-toplevel
  from aigc_jax.errors import ConfigError  # pylint: disable=import-outside-toplevel
  sizes, budgets = len(set(c.scaling.sizes)), len(set(c.scaling.steps))
  if sizes * budgets < scaling.MIN_POINTS or min(sizes, budgets) < scaling.MIN_LEVELS:
    raise ConfigError(f"scaling.sizes x scaling.steps gives {sizes * budgets} runs over {sizes} "
                      f"sizes and {budgets} budgets; the fit has 5 parameters and needs at least "
                      f"{scaling.MIN_POINTS} runs over {scaling.MIN_LEVELS} or more sizes and "
                      f"{scaling.MIN_LEVELS} or more budgets (through two, an exponent is free): "
                      "add sizes or budgets.")
  for layers, width in list(c.scaling.sizes) + [tuple(c.scaling.heldout)]:
    if width % 32 or width % max(width // 32, 1):
      raise ConfigError(f"scaling size ({layers}, {width}): width must be a multiple of 32 "
                        "(heads of 32).")
  if len(set(c.scaling.heldout_seeds)) < 2:
    raise ConfigError(f"scaling.heldout_seeds={tuple(c.scaling.heldout_seeds)}: the held-out "
                      "run needs 2 or more distinct seeds (3 by default) to measure its spread.")


def _size(c, layers: int, width: int, steps: int) -> tuple[int, int]:
  """(N, D) of a run: non-embedding parameters and training tokens."""
  r = run_config(c, layers, width, steps)
  return non_embedding_params(r), steps * r.data.batch_size * r.data.seq_len


def _spec(c) -> dict:
  """What a stored prediction was made for: the held-out run and the fitted grid."""
  hl, hw = c.scaling.heldout
  return {"layers": hl, "width": hw, "steps": c.scaling.heldout_steps,
          "seeds": list(c.scaling.heldout_seeds),
          "grid": [[l, w, s] for (l, w) in c.scaling.sizes for s in c.scaling.steps]}


def _check_stored(path: str, spec: dict) -> None:
  from aigc_jax.errors import ConfigError  # pylint: disable=import-outside-toplevel
  if not os.path.exists(path):
    return
  with open(path) as f:
    stored = json.load(f).get("spec")
  if stored != spec:
    raise ConfigError(f"{path} holds a prediction for {stored}, but the config asks for {spec}; "
                      "a stored prediction is never remade: use a new workdir (or delete "
                      "prediction.json if no held-out run has started).")


def _train(c, sub: str, layers: int, width: int, steps: int, seed: int | None = None) -> dict:
  from aigc_jax import train  # pylint: disable=import-outside-toplevel
  r = run_config(c, layers, width, steps, seed)
  t0 = time.perf_counter()
  s = train.run(r, sub)
  n = non_embedding_params(r)
  d = steps * r.data.batch_size * r.data.seq_len
  print(f"  N={n:,} D={d:,} seed {r.seed}: test loss {s['test_loss']:.4f} "
        f"({time.perf_counter() - t0:.0f} s)", flush=True)
  return {"layers": layers, "width": width, "steps": steps, "seed": r.seed, "N": n, "D": d,
          "flops": 6.0 * n * d, "compiled_flops": s.get("flops_per_step", 0.0) * steps,
          "params": s.get("params", 0.0), "loss": s["test_loss"]}


def _name(layers: int, width: int, steps: int) -> str:
  return f"L{layers}_W{width}_S{steps}"


def _predict(fit, boot, runs, spec, h_n, h_d, ratios) -> dict:
  """The prediction for the held-out run (N=h_n, D=h_d), and the naive predictors' beside it:
  the nearest fitted run's loss, and L(N) fitted alone at the largest fitted D."""
  from aigc_jax.tools import scaling  # pylint: disable=import-outside-toplevel
  near = scaling.nearest_run(runs, h_n, h_d)
  d_max = max(r["D"] for r in runs)
  top = [r for r in runs if r["D"] == d_max]
  law_n = scaling.fit_n([r["N"] for r in top], [r["loss"] for r in top])
  near_fit = fit.predict(near["N"], near["D"])
  return {
      "spec": spec, "N": h_n, "D": h_d, "N_ratio": ratios[0], "D_ratio": ratios[1],
      "fit": {k: getattr(fit, k) for k in scaling.NAMES},
      "predicted_loss": float(fit.predict(h_n, h_d)),
      "interval": boot.get("predicted_loss"),  # the bootstrap's 90% interval
      # How far the law's terms move from the nearest fitted run: what the prediction tests.
      "fit_moves": {"N_term": float(fit.predict(h_n, near["D"]) - near_fit),
                    "D_term": float(fit.predict(near["N"], h_d) - near_fit)},
      "naive": {
          "nearest_run": {"run": _name(near["layers"], near["width"], near["steps"]),
                          "N": near["N"], "D": near["D"], "predicted_loss": near["loss"]},
          "n_only": {"E": law_n.E, "A": law_n.A, "alpha": law_n.alpha, "D": d_max,
                     "predicted_loss": float(law_n.predict(h_n))}}}


def _interval(r: dict | None) -> str:
  return f" [{r['lo']:.4f}, {r['hi']:.4f}] (bootstrap 90%)" if r else ""


def _exponent(fit, boot) -> dict:
  """The fitted compute-optimal exponent a (N_opt ~ C^a), its interval, and Chinchilla's."""
  lo, hi = (boot["a"]["lo"], boot["a"]["hi"]) if boot else (float("nan"), float("nan"))
  return {"a": fit.a, "lo": lo, "hi": hi,
          "chinchilla": {k: {"a": v, "in_interval": bool(lo <= v <= hi)}
                         for k, v in CHINCHILLA_A.items()}}


def study(c, workdir: str) -> dict:
  """The whole study (see the module docstring); returns what summary.json holds."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from aigc_jax import writers  # pylint: disable=import-outside-toplevel
  from aigc_jax.tools import scaling
  from aigc_jax.errors import ConfigError  # pylint: disable=import-outside-toplevel
  _check(c)
  # Refused before anything trains: a held-out run without a stored prediction, a stored
  # prediction for another study, a held-out run too near the fitted grid.
  pred_path = os.path.join(workdir, "prediction.json")
  heldout_root = os.path.join(workdir, "heldout")
  scaling.check_prediction_first(pred_path, [heldout_root])
  spec = _spec(c)
  _check_stored(pred_path, spec)
  fitted = {(l, w): _size(c, l, w, max(c.scaling.steps)) for l, w in c.scaling.sizes}
  hl, hw, hs = spec["layers"], spec["width"], spec["steps"]
  h_n, h_d = _size(c, hl, hw, hs)
  ratios = scaling.check_extrapolation([n for n, _ in fitted.values()],
                                       [d for _, d in fitted.values()], h_n, h_d,
                                       min_n=MIN_N_RATIO, min_d=MIN_D_RATIO)

  t0 = time.perf_counter()
  grid = [(l, w, s) for (l, w) in c.scaling.sizes for s in c.scaling.steps]
  runs = []
  for i, (l, w, s) in enumerate(grid):
    print(f"[{i + 1}/{len(grid)}] {l} layers x width {w}, {s} steps", flush=True)
    runs.append(_train(c, os.path.join(workdir, "runs", _name(l, w, s)), l, w, s))
  col = lambda k: np.array([r[k] for r in runs], np.float64)  # noqa: E731
  fit = scaling.fit(col("N"), col("D"), col("loss"))
  try:
    boot = scaling.bootstrap(col("N"), col("D"), col("loss"), num=c.scaling.bootstrap,
                             seed=c.seed, starts=c.scaling.bootstrap_starts, at=(h_n, h_d))
  except ConfigError as e:  # too few runs for resamples to be fittable: the fit stands alone
    print(f"No bootstrap intervals: {e}", flush=True)
    boot = {}

  # The held-out run is predicted, and the prediction stored, before any of its seeds trains.
  prediction = scaling.predict_before(
      pred_path, [heldout_root], lambda: _predict(fit, boot, runs, spec, h_n, h_d, ratios))
  print(f"held-out prediction ({prediction['made_at']}): N={h_n:,} ({ratios[0]:.2f}x) "
        f"D={h_d:,} ({ratios[1]:.2f}x) -> {prediction['predicted_loss']:.4f}"
        f"{_interval(prediction['interval'])}", flush=True)
  held = [_train(c, os.path.join(heldout_root, f"{_name(hl, hw, hs)}_seed{k}"), hl, hw, hs, k)
          for k in spec["seeds"]]
  losses = [h["loss"] for h in held]
  naive = prediction["naive"]
  labels = {"fit": "L(N, D) fit",
            "nearest_run": f"nearest fitted run ({naive['nearest_run']['run']})",
            "n_only": f"L(N) fit at D={scaling.format_count(naive['n_only']['D'])}"}
  errors = scaling.prediction_errors(
      {"fit": prediction["predicted_loss"],
       **{k: v["predicted_loss"] for k, v in naive.items()}}, losses)
  heldout = dict(prediction, runs=held, seed_losses=losses, actual_loss=float(np.mean(losses)),
                 seed_std=float(np.std(losses, ddof=1)), predictors=errors,
                 error=errors["fit"]["error"], relative_error=errors["fit"]["relative_error"])

  budgets = np.array(c.scaling.budgets, np.float64)
  n_opt, d_opt, l_opt = scaling.compute_optimal(fit, budgets)
  optimal = [{"flops": float(b), "N": float(n), "D": float(d), "loss": float(l)}
             for b, n, d, l in zip(budgets, n_opt, d_opt, l_opt)]
  plots = os.path.join(workdir, "plots")
  figures = [scaling.plot_frontier(runs, fit, os.path.join(plots, "frontier.png")),
             scaling.plot_loss_vs_params(runs, fit, os.path.join(plots, "loss_vs_params.png")),
             scaling.plot_isoloss(runs, fit, os.path.join(plots, "isoloss.png"))]
  held_table = scaling.predictions_markdown({labels[k]: v for k, v in errors.items()}, losses)
  moves = prediction["fit_moves"]
  table = (scaling.table_markdown(runs, fit) + f"\nHeld-out {_name(hl, hw, hs)}: N={h_n:,} "
           f"({ratios[0]:.2f}x the largest fitted), D={h_d:,} ({ratios[1]:.2f}x); from the "
           f"nearest fitted run the law's N term moves {moves['N_term']:+.4f} and its D term "
           f"{moves['D_term']:+.4f}; the fit predicts {prediction['predicted_loss']:.4f}"
           f"{_interval(prediction['interval'])}.\n" + held_table)
  exponent = _exponent(fit, boot)
  summary = {"fit": {k: getattr(fit, k) for k in scaling.NAMES + ("a", "b")},
             "bootstrap": boot, "compute_optimal_exponent": exponent, "runs": runs,
             "heldout": heldout, "compute_optimal": optimal, "plots": figures,
             "minutes": (time.perf_counter() - t0) / 60}
  writers.atomic_write(os.path.join(workdir, "table.md"), table)
  writers.atomic_write(os.path.join(workdir, "summary.json"),
                       json.dumps(summary, indent=1, default=float))
  ci = lambda k: (f"{boot[k]['estimate']:.3f} [{boot[k]['lo']:.3f}, {boot[k]['hi']:.3f}]"  # noqa
                  if boot else f"{getattr(fit, k):.3f}")
  refs = ", ".join(f"{k} {v['a']:.2f} {'inside' if v['in_interval'] else 'outside'}"
                   for k, v in exponent["chinchilla"].items())
  print(table)
  print(f"L(N, D) = {fit.E:.3f} + {fit.A:.4g} / N^{fit.alpha:.3f} + {fit.B:.4g} / D^{fit.beta:.3f}"
        f"\nalpha {ci('alpha')}, beta {ci('beta')}, N_opt ~ C^{ci('a')} (Chinchilla {refs}), "
        f"D_opt ~ C^{ci('b')}", flush=True)
  return summary


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
