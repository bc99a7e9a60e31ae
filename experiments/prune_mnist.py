"""Iterative magnitude pruning (Han et al. 2015) of LeNet-300-100 and LeNet-5 on the MNIST carve.

Published (full 60k MNIST, Han et al. 2015 Tables 1-3), keeping 8% of the weights (12x):
LeNet-300-100 1.64% -> 1.59% error; LeNet-5 0.80% -> 0.77%.

Commands (variants: `lenet300`, the default, `lenet5`, `quick`):
  python -m experiments.prune_mnist --workdir=DIR
  python -m aigc_jax.main --config=experiments/prune_mnist.py:lenet5 --workdir=DIR

Each seed trains the pruning run and a dense control on the same schedule. Measured (2-core CPU,
jax 0.12.1, 7,000-image carve, seeds 0-2, 95% intervals over the 2,000 test images):
LeNet-300-100 dense control 4.75% [3.86, 5.78], 92% pruned 4.55% [3.68, 5.56], difference -0.20
points [-1.51, +1.11]. LeNet-5: dense control 1.58% [1.10, 2.25], pruned 1.72% [1.18, 2.37],
difference +0.13 points [-0.69, +0.89] (before the carve, one seed, no control: 1.35% -> 1.50%
in 2 min 54 s).

Full results and notes: docs/compression.md, section 'Pruning'.
"""

import json
import os

import ml_collections
import numpy as np

from aigc_jax import config as config_lib

PAPER = {
    "lenet300": {"error_dense": 1.64, "error_pruned": 1.59, "kept": 0.08,
                 "layers": {"fc1": 0.08, "fc2": 0.09, "fc3": 0.26}},
    "lenet5": {"error_dense": 0.80, "error_pruned": 0.77, "kept": 0.08,
               "layers": {"conv1": 0.66, "conv2": 0.12, "fc1": 0.08, "fc2": 0.19}},
}
SPARSITIES = (0.5, 0.75, 0.875, 0.92)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = arg or "lenet300"
  if variant not in ("lenet300", "lenet5", "quick"):
    raise ValueError(f"Unknown variant {variant!r} of prune_mnist; valid: lenet300, lenet5, "
                     "quick.")
  c = config_lib.get_config(task="classify")
  if variant == "lenet5":
    c.model = ml_collections.ConfigDict({
        "name": "cnn", "features": (20, 50), "kernels": (5, 5), "strides": (1, 1),
        "padding": ("VALID", "VALID"), "pool_stride": 2, "hidden": 500})
  else:
    c.model = ml_collections.ConfigDict({"name": "mlp", "hidden": (300, 100)})
  c.data.name = "mnist_idx"
  c.data.preprocess = "value_range(0, 1)|rename(image='input')"
  c.data.batch_size = 128
  c.data.eval_batch_size = 1000
  # 7,000 images, ~55 steps an epoch: ~23 epochs dense, ~11 per round, ~23 after the last
  # (the schedule of the 8,000-image carve it was set for, kept in steps).
  dense, every = (1250, 625) if variant != "quick" else (624, 312)
  rounds = tuple((dense + i * every, s) for i, s in enumerate(SPARSITIES))
  c.optim.update(name="adamw", lr=1e-3, weight_decay=1e-4, decay="matrices",
                 lr_drops=((dense, 0.1),))
  c.prune.update(enabled=True, rounds=rounds, scope="global")
  c.train.update(num_steps=rounds[-1][0] + 2 * every, log_every_steps=every // 5,
                 eval_every_steps=every, checkpoint_every_steps=every)
  config_lib.add_eval(c, "test", "metrics")
  c.variant = variant
  # Each seed trains the pruned network and a dense control on the same schedule.
  c.seeds = (0,) if variant == "quick" else (0, 1, 2)
  c.runner = "experiments.prune_mnist:study"
  return c


def _test_curve(workdir: str) -> dict:
  tests = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      m = json.loads(line)
      if m["split"] == "test":
        tests[m["step"]] = m["accuracy"]
  return tests


def binomial_ci(errors: int, n: int, level: float = 0.95) -> tuple[float, float]:
  """Clopper-Pearson interval of an error rate, in percent."""
  from scipy import stats  # pylint: disable=import-outside-toplevel
  ci = stats.binomtest(errors, n).proportion_ci(confidence_level=level, method="exact")
  return 100 * ci.low, 100 * ci.high


def difference_ci(e1: int, e2: int, n: int, level: float = 0.95) -> tuple[float, float]:
  """Normal interval of (e2 - e1) / n in points for two error counts on n images each, as
  independent samples: wider than a paired interval, so a claim inside it is conservative."""
  from scipy import stats  # pylint: disable=import-outside-toplevel
  p1, p2 = e1 / n, e2 / n
  half = stats.norm.ppf(0.5 + level / 2) * np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)
  return 100 * (p2 - p1 - half), 100 * (p2 - p1 + half)


def study(config, workdir: str) -> dict:
  """For each seed the pruning run and a dense control on the same schedule (same steps, same
  rate drops, no pruning); then the curve, the per-layer table and the errors with intervals."""
  from aigc_jax import train, writers  # pylint: disable=import-outside-toplevel
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.runner = ""
  seeds = tuple(c.get("seeds", (c.seed,)))
  n_test = _n_test(c)
  per_seed, summary, points = {}, None, None
  for seed in seeds:
    runs = {}
    for arm in ("pruned", "dense"):
      rc = c.copy_and_resolve_references()
      with rc.unlocked():
        rc.seed = seed
        rc.prune.enabled = arm == "pruned"
      s = train.run(rc, os.path.join(workdir, f"seed{seed}", arm))
      runs[arm] = (s, _test_curve(os.path.join(workdir, f"seed{seed}", arm)))
    s, tests = runs["pruned"]
    if summary is None:  # the first seed's run gives the curve and the per-layer table
      summary = s
      points = [(0.0, tests[c.prune.rounds[0][0]])]  # dense, just before the first round
      ends = [r[0] for r in c.prune.rounds[1:]] + [c.train.num_steps]
      points += [(sp, tests[e]) for (_, sp), e in zip(c.prune.rounds, ends)]
    per_seed[seed] = {
        "error_dense_control": 100 * (1 - runs["dense"][0]["test_accuracy"]),
        "error_before_pruning": 100 * (1 - tests[c.prune.rounds[0][0]]),
        "error_pruned": 100 * (1 - s["test_accuracy"])}
  variant = c.get("variant", "lenet300")
  paper = PAPER["lenet5" if variant == "lenet5" else "lenet300"]
  names = list(paper["layers"])
  kept = {k: v for k, v in summary["kept_by_layer"].items() if k != "all"}
  lines = ["| layer | kept (ours) | kept (Han et al.) |", "|---|---|---|"]
  for name, (path, frac) in zip(names, kept.items()):
    lines.append(f"| {name} ({path}) | {frac:.1%} | {paper['layers'][name]:.0%} |")
  lines.append(f"| all | {summary['kept_by_layer']['all']:.1%} | {paper['kept']:.0%} |")
  # The seeds' mean error; its intervals over the n test images, not n x seeds: the seeds share
  # one test set, so averaging them removes training noise but not the test set's sampling noise.
  mean = lambda key: float(np.mean([r[key] for r in per_seed.values()]))
  dense_err, pruned_err = mean("error_dense_control"), mean("error_pruned")
  dense_e, pruned_e = (int(round(e * n_test / 100)) for e in (dense_err, pruned_err))
  out = {"seeds": {str(k): v for k, v in per_seed.items()}, "test_examples": n_test,
         "error_dense": dense_err, "error_pruned": pruned_err,
         "error_dense_ci95": binomial_ci(dense_e, n_test),
         "error_pruned_ci95": binomial_ci(pruned_e, n_test),
         "difference": pruned_err - dense_err,
         "difference_ci95": difference_ci(dense_e, pruned_e, n_test),
         "error_dense_std": float(np.std([r["error_dense_control"] for r in per_seed.values()])),
         "error_pruned_std": float(np.std([r["error_pruned"] for r in per_seed.values()]))}
  lo, hi = out["difference_ci95"]
  lines += ["", f"test error, mean over seeds {', '.join(map(str, seeds))} ({n_test:,} images; "
                f"95% intervals over them): "
                f"dense control {dense_err:.2f}% [{out['error_dense_ci95'][0]:.2f}, "
                f"{out['error_dense_ci95'][1]:.2f}], pruned {pruned_err:.2f}% "
                f"[{out['error_pruned_ci95'][0]:.2f}, {out['error_pruned_ci95'][1]:.2f}]; "
                f"pruned - dense {out['difference']:+.2f} points, 95% interval [{lo:+.2f}, "
                f"{hi:+.2f}] (Han et al., 60k MNIST: {paper['error_dense']}% -> "
                f"{paper['error_pruned']}%)"]
  for seed, r in per_seed.items():
    lines.append(f"seed {seed}: dense control {r['error_dense_control']:.2f}%, before pruning "
                 f"{r['error_before_pruning']:.2f}%, pruned {r['error_pruned']:.2f}%")
  writers.atomic_write(os.path.join(workdir, "prune_table.md"), "\n".join(lines) + "\n")
  _plot(points, os.path.join(workdir, "sparsity.png"), variant)
  summary = dict(summary, curve=[[sp, a] for sp, a in points], **out)
  writers.atomic_write(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=1))
  print("\n".join(lines), flush=True)
  return summary


def _n_test(c) -> int:
  from aigc_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  return len(pipeline.load_split(c.data, "test"))


def _plot(points, path: str, variant: str) -> None:
  from aigc_jax import writers  # pylint: disable=import-outside-toplevel
  plt = writers.pyplot()
  s = np.asarray([p[0] for p in points])
  err = 100 * (1 - np.asarray([p[1] for p in points]))
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.plot(100 * (1 - s), err, "o-")
  for x, y, sp in zip(100 * (1 - s), err, s):
    ax.annotate(f"sparsity {sp:.1%}", (x, y), textcoords="offset points", xytext=(4, 4),
                fontsize=8)
  ax.set_xscale("log")
  ax.set_xticks(100 * (1 - s), [f"{k:g}" for k in 100 * (1 - s)])
  ax.minorticks_off()
  ax.invert_xaxis()
  ax.set_xlabel("weights kept (%)")
  ax.set_ylabel("test error (%) on 2,000 images")
  ax.set_title(f"{variant}: iterative magnitude pruning, MNIST 7k carve (seed 0)", fontsize=9)
  ax.grid(alpha=0.3)
  writers.save_figure(fig, path, dpi=120)


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
