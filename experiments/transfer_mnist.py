"""Pretrain, then transfer with few labels: the representation table on the MNIST carve.

  python -m experiments.transfer_mnist --workdir=DIR [--variant=quick]

Measured (2-core CPU, jax 0.12.1; 7,000 / 1,000 / 2,000 carve; test accuracy %, fine-tuning mean
± std over seeds 0-2; the ViT rows' lr chosen per budget on validation from 3e-4, 1e-3, 3e-3;
60 min 15 s for the seven rows with other jobs sharing the cores):

  representation   probe  kNN   10/class     100/class    all
  raw pixels       90.5   94.4  74.2 ± 2.2   88.2 ± 0.2   91.3 ± 0.1
  scratch          65.9   76.6  74.6 ± 2.5   90.3 ± 0.3   95.3 ± 0.1
  AE encoder       88.2   94.5  75.6 ± 1.6   91.2 ± 0.7   95.4 ± 0.1
  VAE encoder      87.5   95.4  74.8 ± 2.3   91.4 ± 0.4   95.7 ± 0.2
  SimCLR encoder   94.0   93.3  77.7 ± 2.4   91.8 ± 0.7   95.6 ± 0.2
  ViT scratch      74.0   38.4  47.1 ± 0.9   87.9 ± 0.9   95.1 ± 0.2
  ViT from MAE     94.0   88.6  75.4 ± 1.7   93.5 ± 0.7   97.0 ± 0.5

Full results and notes: docs/results.md, section 'Representation learning'.
"""

import dataclasses
import json
import os
import sys
from typing import Callable

import ml_collections
from absl import app, flags, logging

from aigc_jax import train
from aigc_jax.tools import sweep
from aigc_jax.errors import ConfigError
from aigc_jax.models import vit
from aigc_jax import config as config_lib
from experiments import ae_mnist, mae_mnist, simclr_mnist, vae_mnist

LABELS = (10, 100, 0)  # per class; 0: all
SEEDS = (0, 1, 2)
ROWS = ("pixels", "random", "ae", "vae", "simclr", "vit", "mae")
PRETRAIN = {"ae": ae_mnist, "vae": vae_mnist, "simclr": simclr_mnist, "mae": mae_mnist}
# Where the pretrained run keeps the encoder: the contrastive model wraps an encoder_classifier.
ENCODER = {"ae": "encoder", "vae": "encoder", "simclr": "encoder/encoder"}
VIT_ROWS = ("vit", "mae")  # the MAE's ViT, from scratch or pretrained


def pretrain_config(rep: str, quick: bool) -> ml_collections.ConfigDict:
  return PRETRAIN[rep].get_config("quick" if quick else None)


@dataclasses.dataclass(frozen=True)
class Table:
  """One pretrain-then-transfer table: what is pretrained, how a labelled run is configured."""
  rows: tuple  # representations, e.g. ("pixels", "random", "ae")
  pretrain: Callable  # (rep, quick) -> config of its unlabelled run, for reps in `pretrained`
  pretrained: tuple
  classifier: Callable  # (rep, labels per class, seed, init workdir, probe) -> config
  names: dict
  title: str
  labels: tuple = LABELS
  seeds: tuple = SEEDS
  knn_k: int = 20
  # Rows trained from scratch that still need a pretrained run's artifacts (its tokenizer),
  # not its weights: row -> pretrained row whose workdir the classifier is given.
  borrows: dict = dataclasses.field(default_factory=dict)
  # Fields replaced in the quick variant (e.g. fewer seeds), besides quick pretraining.
  quick: dict = dataclasses.field(default_factory=dict)
  # Rows whose fine-tuning is tuned on the validation split: for each labels budget, the first
  # seed runs once per entry of `grid` (dotted config overrides), the entry with the best
  # validation accuracy is kept, and the other seeds run with it. Every tuned row gets the same
  # grid, so the rows compared have had the same tuning budget.
  tuned: tuple = ()
  grid: tuple = ()


def classifier_config(rep: str, labels: int, seed: int, init_workdir: str = "",
                      probe: bool = False) -> ml_collections.ConfigDict:
  """The labelled run of one table cell: fine-tuning, or (probe=True) a frozen encoder with the
  probe evaluators on all labels."""
  c = config_lib.get_config(task="classify")
  c.seed = seed
  if rep == "pixels":
    c.model = ml_collections.ConfigDict({"name": "linear"})
  elif rep in VIT_ROWS:
    m = mae_mnist.get_config().model
    c.model = ml_collections.ConfigDict({"name": "vit", **{k: m[k] for k in (
        "image_size", "channels", "patch", "width", "depth", "num_heads")}})
  else:
    encoder = dict(kind="mlp", hidden=(500,), latent_dim=20, variational=rep == "vae")
    c.model = ml_collections.ConfigDict({"name": "encoder_classifier", "encoder": encoder})
  ae_mnist.mnist(c, 0.0)
  c.data.labels_per_class = labels
  if labels == 10:
    c.data.batch_size, c.train.num_steps = 100, 300
  elif labels == 100:
    c.data.batch_size, c.train.num_steps = 100, 600
  else:
    c.train.num_epochs = 20.0
  c.train.update(eval_every_steps=100_000, checkpoint_every_steps=100_000, log_every_steps=50)
  config_lib.add_eval(c, "test", "metrics")
  if init_workdir:
    c.init.update(workdir=init_workdir, checkpoint="latest", map=(
        vit.init_map(c.model.depth) if rep in VIT_ROWS else f"encoder<-{ENCODER[rep]}"))
  if probe:
    c.train.update(num_epochs=0.0, num_steps=63)  # one epoch for the head; the probe is exact
    fn = "input" if rep == "pixels" else "encode"
    if rep in VIT_ROWS:
      c.freeze = "^(?!head/)"
    elif rep != "pixels":
      c.freeze = "^encoder/"
    config_lib.add_eval(c, "probe", "linear_probe", fn=fn, every_steps=-1)
    config_lib.add_eval(c, "knn", "knn", fn=fn, every_steps=-1)
  return c


def run(workdir: str, quick: bool = False, spec: Table | None = None) -> dict:
  """Every stage (each resumable), then the table: {row: {column: stats}}."""
  spec = spec or MNIST
  if quick:
    spec = dataclasses.replace(spec, **spec.quick)
  labels, seeds = spec.labels, spec.seeds
  init = {}
  for rep in spec.rows:
    if rep in spec.pretrained:
      init[rep] = os.path.join(workdir, f"pretrain_{rep}")
      print(f"== pretraining {rep} -> {init[rep]}", flush=True)
      train.run(spec.pretrain(rep, quick), init[rep])
  for rep, lender in spec.borrows.items():
    init[rep] = init[lender]
  table = {}
  for rep in spec.rows:
    probe = train.run(spec.classifier(rep, 0, 0, init.get(rep, ""), True),
                      os.path.join(workdir, "probe", rep))
    row = {"linear_probe": probe["probe_accuracy"], "knn": probe["knn_accuracy"]}
    for n in labels:
      chosen, done = {}, {}
      if rep in spec.tuned and spec.grid:
        chosen, done, row.setdefault("tuning", {})[str(n or "all")] = _tune(
            spec, rep, n, init.get(rep, ""), workdir)
      results = []
      for seed in seeds:
        if seed in done:
          s = done[seed]
        else:
          sub = os.path.join(workdir, "finetune", f"{rep}_labels{n or 'all'}_seed{seed}")
          print(f"== {rep}, {n or 'all'} labels per class, seed {seed} -> {sub}", flush=True)
          c = spec.classifier(rep, n, seed, init.get(rep, ""), False)
          c.update_from_flattened_dict(chosen)
          s = train.run(c, sub)
        results.append(({"seed": seed}, {"test_accuracy": s["test_accuracy"]}))
      agg = sweep.aggregate(results, {})["all"]["test_accuracy"]
      row[f"finetune_{n or 'all'}"] = agg
    table[rep] = row
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "transfer.json"), "w") as f:
    json.dump(table, f, indent=2)
  md = markdown(table, spec)
  with open(os.path.join(workdir, "transfer.md"), "w") as f:
    f.write(md)
  chart(table, spec, os.path.join(workdir, "transfer.png"))
  print(md, flush=True)
  return table


def _tag(overrides: dict) -> str:
  return ",".join(f"{k.split('.')[-1]}={v:g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in overrides.items())


def _tune(spec: Table, rep: str, n: int, init_workdir: str, workdir: str):
  """(overrides chosen on validation, {first seed: its summary}, record): the first seed trained
  with each grid entry, scored on the validation split. Test accuracy is evaluated too, so the
  chosen run is the table's first seed; it plays no part in the choice."""
  seed = spec.seeds[0]
  trials = []
  for overrides in spec.grid:
    sub = os.path.join(workdir, "tune", f"{rep}_labels{n or 'all'}_seed{seed}_{_tag(overrides)}")
    print(f"== tuning {rep}, {n or 'all'} labels per class, {_tag(overrides)} -> {sub}",
          flush=True)
    c = spec.classifier(rep, n, seed, init_workdir, False)
    c.update_from_flattened_dict(dict(overrides))
    config_lib.add_eval(c, "validation", "metrics", split="validation")
    trials.append((dict(overrides), train.run(c, sub)))
  best, summary = max(trials, key=lambda t: t[1]["validation_accuracy"])
  record = {"chosen": best, "validation_accuracy": {
      _tag(o): s["validation_accuracy"] for o, s in trials}}
  return best, {seed: summary}, record


def chart(table: dict, spec: Table, path: str) -> None:
  """Grouped bars: a group per column (probe, kNN, fine-tuning budgets), a bar per representation,
  seed spread as error bars."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  labels = spec.labels
  cols = ["linear_probe", "knn"] + [f"finetune_{n or 'all'}" for n in labels]
  names = ["linear probe", "kNN"] + [f"{n or 'all'} labels/class" for n in labels]
  fig, ax = plt.subplots(figsize=(12, 4.5))
  width = 0.8 / len(table)
  lowest = 100.0
  for i, (rep, row) in enumerate(table.items()):
    means = [100 * (row[c]["mean"] if isinstance(row[c], dict) else row[c]) for c in cols]
    errs = [100 * row[c]["std"] if isinstance(row[c], dict) else 0.0 for c in cols]
    lowest = min(lowest, *means)
    ax.bar([j + (i - (len(table) - 1) / 2) * width for j in range(len(cols))], means, width,
           yerr=errs, capsize=2, label=spec.names.get(rep, rep))
  ax.set_xticks(range(len(cols)), names)
  ax.set_ylabel("test accuracy (%)")
  ax.set_ylim(max(0.0, 10 * (lowest // 10) - 10), 100)  # bars start below the lowest
  ax.grid(axis="y", alpha=0.3)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  ax.set_title(f"{spec.title}: pretrain, then probe or fine-tune (mean ± std over seeds)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


NAMES = {"pixels": "raw pixels (784)", "random": "random-init encoder (scratch)",
         "ae": "AE encoder", "vae": "VAE encoder (mean)", "simclr": "SimCLR encoder",
         "vit": "ViT, random init (scratch)", "mae": "ViT, MAE-pretrained"}
# The ViT rows' fine-tuning rate, chosen per labels budget on validation for both alike; the MLP
# rows share the fixed recipe (Adam 1e-3).
VIT_GRID = ({"optim.lr": 3e-4}, {"optim.lr": 1e-3}, {"optim.lr": 3e-3})
MNIST = Table(rows=ROWS, pretrain=pretrain_config, pretrained=tuple(PRETRAIN),
              classifier=classifier_config, names=NAMES, title="MNIST carve (2,000 test images)",
              quick={"seeds": (0,), "grid": ()}, tuned=VIT_ROWS, grid=VIT_GRID)


def markdown(table: dict, spec: Table) -> str:
  labels = spec.labels
  cols = [f"{n or 'all'} labels/class" for n in labels]
  lines = [f"| representation | linear probe | kNN (k={spec.knn_k}) | {' | '.join(cols)} |",
           "|---|---|---|" + "---|" * len(cols)]
  for rep, row in table.items():
    cells = []
    for n in labels:
      a = row[f"finetune_{n or 'all'}"]
      cells.append(f"{100 * a['mean']:.1f} ± {100 * a['std']:.1f}")
    lines.append(f"| {spec.names.get(rep, rep)} | {100 * row['linear_probe']:.1f} | "
                 f"{100 * row['knn']:.1f} | {' | '.join(cells)} |")
  lines.append("")
  for rep, row in table.items():
    for n, t in row.get("tuning", {}).items():
      scores = ", ".join(f"{k}: {100 * v:.1f}" for k, v in t["validation_accuracy"].items())
      lines.append(f"- {spec.names.get(rep, rep)}, {n} labels/class: chosen {_tag(t['chosen'])} "
                   f"on validation ({scores}).")
  if any("tuning" in row for row in table.values()):
    lines.append("")
  spread = (f"mean ± std over {len(spec.seeds)} seeds (each its own labelled subset)"
            if len(spec.seeds) > 1 else f"one seed ({spec.seeds[0]}), so no spread")
  lines.append(f"{spec.title}. Test accuracy (%); fine-tuning: {spread}.")
  return "\n".join(lines) + "\n"


def cli(spec: Table, quick_help: str) -> None:
  """`python -m experiments.<table> --workdir=DIR [--variant=quick]` for a Table."""
  flags.DEFINE_string("workdir", None, "Where every stage's workdir and the table go.",
                      required=True)
  flags.DEFINE_enum("variant", "", ["", "quick"], quick_help)

  def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax and tfds log every file operation at INFO
    try:
      run(flags.FLAGS.workdir, quick=flags.FLAGS.variant == "quick", spec=spec)
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  app.run(main)


if __name__ == "__main__":
  cli(MNIST, "quick: the pretraining runs' quick variants, fine-tuning seed 0 only.")
