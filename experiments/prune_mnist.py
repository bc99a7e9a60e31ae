"""Iterative magnitude pruning (Han et al. 2015) of LeNet-300-100 and LeNet-5 on the MNIST carve.

Published (full 60k MNIST, Han et al. 2015 Tables 1-3), keeping 8% of the weights (12x):
LeNet-300-100 1.64% -> 1.59% error; LeNet-5 0.80% -> 0.77%.

Commands (variants: `lenet300`, the default, `lenet5`, `quick`):
  python -m experiments.prune_mnist --workdir=DIR
  python -m aigc_jax.main --config=experiments/prune_mnist.py:lenet5 --workdir=DIR

Measured (2-core CPU, jax 0.12, one run each), error dense -> 92% sparsity: LeNet-300-100
4.35% -> 4.25% (10 s); LeNet-5 1.35% -> 1.50% (2 min 54 s); quick 4.45% -> 4.45% (9.3 s,
median of 3).

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
  # 8,000 images, 62.5 steps an epoch: 20 epochs dense, 10 per round, 20 after the last.
  dense, every = (1250, 625) if variant != "quick" else (624, 312)
  rounds = tuple((dense + i * every, s) for i, s in enumerate(SPARSITIES))
  c.optim.update(name="adamw", lr=1e-3, weight_decay=1e-4, decay="matrices",
                 lr_drops=((dense, 0.1),))
  c.prune.update(enabled=True, rounds=rounds, scope="global")
  c.train.update(num_steps=rounds[-1][0] + 2 * every, log_every_steps=every // 5,
                 eval_every_steps=every, checkpoint_every_steps=every)
  config_lib.add_eval(c, "test", "metrics")
  c.variant = variant
  c.runner = "experiments.prune_mnist:study"
  return c


def study(config, workdir: str) -> dict:
  """The run, then the curve (accuracy just before each round) and the per-layer table."""
  from aigc_jax import train, writers  # pylint: disable=import-outside-toplevel
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.runner = ""
  summary = train.run(c, workdir)
  tests = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      m = json.loads(line)
      if m["split"] == "test":
        tests[m["step"]] = m["accuracy"]
  points = [(0.0, tests[c.prune.rounds[0][0]])]  # dense, just before the first round
  ends = [r[0] for r in c.prune.rounds[1:]] + [c.train.num_steps]
  points += [(s, tests[e]) for (_, s), e in zip(c.prune.rounds, ends)]
  variant = c.get("variant", "lenet300")
  paper = PAPER["lenet5" if variant == "lenet5" else "lenet300"]
  names = list(paper["layers"])
  kept = {k: v for k, v in summary["kept_by_layer"].items() if k != "all"}
  lines = ["| layer | kept (ours) | kept (Han et al.) |", "|---|---|---|"]
  for name, (path, frac) in zip(names, kept.items()):
    lines.append(f"| {name} ({path}) | {frac:.1%} | {paper['layers'][name]:.0%} |")
  lines.append(f"| all | {summary['kept_by_layer']['all']:.1%} | {paper['kept']:.0%} |")
  dense_err, pruned_err = 100 * (1 - points[0][1]), 100 * (1 - points[-1][1])
  lines += ["", f"test error: dense {dense_err:.2f}%, pruned {pruned_err:.2f}% "
                f"(Han et al., 60k MNIST: {paper['error_dense']}% -> {paper['error_pruned']}%)"]
  writers.atomic_write(os.path.join(workdir, "prune_table.md"), "\n".join(lines) + "\n")
  _plot(points, os.path.join(workdir, "sparsity.png"), variant)
  summary.update(curve=[[s, a] for s, a in points], error_dense=dense_err,
                 error_pruned=pruned_err)
  writers.atomic_write(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=1))
  print("\n".join(lines), flush=True)
  return summary


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
  ax.set_title(f"{variant}: iterative magnitude pruning, MNIST 8k carve")
  ax.grid(alpha=0.3)
  writers.save_figure(fig, path, dpi=120)


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
