"""Federated averaging (McMahan et al. 2017) on the MNIST carve: FedSGD against FedAvg.

Published (full MNIST, their CNN, to 99%): FedSGD 626 rounds against 20 for FedAvg E=5 B=10 on
IID data (31x); 483 against 173 on non-IID shards (2.8x). Here: 100 clients of 80 images, their
2NN, to 95%.

Commands (variants: none, the four-run study; `fedsgd_iid`, `fedavg_iid`, `fedsgd_shards`,
`fedavg_shards` alone; `quick`):
  python -m experiments.fedavg_mnist --workdir=DIR
  python -m aigc_jax.main --config=experiments/fedavg_mnist.py:quick --workdir=DIR

Measured (2-core CPU, jax 0.12; 53 s for all four): rounds to 95%: FedSGD 270 / FedAvg 60 on IID
(4.5x fewer), 300 / 212 on shards (1.4x). quick (FedAvg IID, 20 rounds): 92.4%, 6.5 s median of 3.

Full results and notes: docs/compression.md, section 'Federated averaging'.
"""

import json
import os

import ml_collections

from aigc_jax import config as config_lib

TARGET = 0.95
VARIANTS = ("fedsgd_iid", "fedavg_iid", "fedsgd_shards", "fedavg_shards", "quick")
PAPER = {"fedsgd_iid": 626, "fedavg_iid": 20, "fedsgd_shards": 483, "fedavg_shards": 173}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.get_config(task="classify")
  # McMahan et al.'s 2NN (two hidden layers of 200): per-client weights make a vmapped
  # convolution a grouped one, which XLA:CPU runs ~10x slower than the matmuls of an MLP.
  c.model = ml_collections.ConfigDict({"name": "mlp", "hidden": (200, 200)})
  c.data.name = "mnist_idx"
  c.data.preprocess = "value_range(0, 1)|rename(image='input')"
  c.data.batch_size = 80  # unused by the rounds; any multiple of the devices
  c.data.eval_batch_size = 1000
  c.optim.update(name="sgd", lr=1.0, schedule="constant")  # the server: w + mean change
  c.fed.update(enabled=True, clients=100, fraction=0.1)
  config_lib.add_eval(c, "test", "metrics")
  if not arg:
    c.runner = "experiments.fedavg_mnist:study"
    arg = "fedavg_iid"
  if arg not in VARIANTS:
    raise ValueError(f"Unknown variant {arg!r} of fedavg_mnist; valid: {', '.join(VARIANTS)}, "
                     "or none (all four).")
  fedsgd = arg.startswith("fedsgd")
  c.fed.update(split="shards" if arg.endswith("shards") else "iid",
               local_epochs=1 if fedsgd else 5, local_batch=0 if fedsgd else 10,
               client_lr=0.5 if fedsgd else 0.2)  # the best of a few tried (0.1-0.4; 0.5-2)
  rounds, every = (1500, 10) if fedsgd else (400, 2)
  if arg == "quick":
    rounds = 20
  c.train.update(num_steps=rounds, log_every_steps=every, eval_every_steps=every,
                 checkpoint_every_steps=5 * every)
  return c


def rounds_to(workdir: str, target: float = TARGET):
  """The first evaluated round at or above the target test accuracy, and the curve."""
  curve = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      m = json.loads(line)
      if m["split"] == "test":
        curve.append((m["step"], m["accuracy"]))
  hit = next((r for r, a in curve if a >= target), None)
  return hit, curve


def study(config, workdir: str) -> dict:
  """The four runs, then the curves, the table and the speed-ups."""
  from aigc_jax import train, writers  # pylint: disable=import-outside-toplevel
  del config
  out, curves = {}, {}
  for v in VARIANTS[:4]:
    c = get_config(v)
    c.train.progress_bar = False
    run_dir = os.path.join(workdir, v)
    s = train.run(c, run_dir)
    hit, curves[v] = rounds_to(run_dir)
    out[v] = {"rounds_to_target": hit, "final_accuracy": s["test_accuracy"],
              "rounds": c.train.num_steps}
  lines = [f"| run | rounds to {TARGET:.0%} | final accuracy (rounds) | McMahan et al. (99%) |",
           "|---|---|---|---|"]
  for v, r in out.items():
    lines.append(f"| {v} | {r['rounds_to_target'] or 'not reached'} | "
                 f"{r['final_accuracy']:.2%} ({r['rounds']}) | {PAPER[v]} |")
  for split in ("iid", "shards"):
    a, b = out[f"fedsgd_{split}"]["rounds_to_target"], out[f"fedavg_{split}"]["rounds_to_target"]
    if a and b:
      out[f"speedup_{split}"] = a / b
      lines.append(f"\nFedAvg speed-up, {split}: {a / b:.1f}x (paper: "
                   f"{PAPER[f'fedsgd_{split}'] / PAPER[f'fedavg_{split}']:.1f}x)")
  writers.atomic_write(os.path.join(workdir, "fed_table.md"), "\n".join(lines) + "\n")
  writers.atomic_write(os.path.join(workdir, "summary.json"), json.dumps(out, indent=1))
  _plot(curves, os.path.join(workdir, "fed_curves.png"))
  print("\n".join(lines), flush=True)
  return out


def _plot(curves: dict, path: str) -> None:
  from aigc_jax import writers  # pylint: disable=import-outside-toplevel
  plt = writers.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for v, pts in curves.items():
    ax.plot([r for r, _ in pts], [100 * a for _, a in pts], label=v,
            linestyle="-" if v.startswith("fedavg") else "--")
  ax.axhline(100 * TARGET, color="grey", lw=0.8)
  ax.set_xscale("log")
  ax.set_ylim(80, 100)
  ax.set_xlabel("communication rounds")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title("FedSGD vs FedAvg: 2NN, 100 clients, C = 0.1, MNIST 8k carve", fontsize=10)
  ax.legend()
  ax.grid(alpha=0.3)
  writers.save_figure(fig, path, dpi=120)


if __name__ == "__main__":
  from aigc_jax import main
  main.cli(__file__)
