"""The fast GPT recipe against nanoGPT, and its ablation: wall time to quality, start to finish.

  python -m benchmarks.gpt_recipe --workdir=/tmp/recipe [--seeds=0,1,2] [--rows=all]
      [--nanogpt_dir=PATH --nanogpt_python=PATH --repeats=3]

Each row runs `experiments/gpt_shakespeare_char.py:fast` as a new process (start-up, compiling,
the final whole-split evaluation and sample included) with one technique removed, once per seed,
and prints the median wall time and the validation loss's mean and spread. With --nanogpt_dir
(a checkout of nanoGPT with data/shakespeare_char prepared) it first alternates nanoGPT's CPU
configuration, as its README gives it, with ours (`fast` and `quick`), --repeats times each, back
to back, so both see the same machine. Never run it beside other work: it is a timing.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

from absl import app, flags

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/gpt_recipe", "Where the runs go.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds per ablation row.")
_ROWS = flags.DEFINE_list("rows", ["all"], "Ablation rows to run (names below), or all, or none.")
_NANOGPT = flags.DEFINE_string("nanogpt_dir", "", "A nanoGPT checkout to time side by side.")
_NANOGPT_PY = flags.DEFINE_string("nanogpt_python", "python", "Python with torch for nanoGPT.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Side-by-side repeats (medians reported).")

# Each technique removed in turn: the overrides that undo it in the `fast` config.
ABLATIONS = {
    "fast (all)": [],
    "- rotary (learned positions)": ["model.position=learned"],
    "- Muon (AdamW everywhere, lr 3e-3)": ["optim.name=adamw", "optim.lr=3e-3",
                                           "optim.weight_decay=0.0"],
    "- ReLU^2 (GELU)": ["model.mlp=gelu"],
    "- QK-norm": ["model.qk_norm=False"],
    "- RMSNorm (LayerNorm)": ["model.norm=layer"],
    "- zero-init projections": ["model.zero_init=False"],
    "- untied head (tied)": ["model.tie_embeddings=True"],
    "- logit soft-cap": ["model.logit_softcap=0.0"],
    "- value residual": ["model.value_residual=False"],
    "- x0 skips": ["model.x0_skip=False"],
    "- U-net skips": ["model.unet_skips=False"],
    "- WSD (warmup-cosine)": ["optim.schedule=warmup_cosine"],
}
_NANO_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
              "--eval_iters=20", "--log_interval=1", "--block_size=64", "--batch_size=12",
              "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
              "--lr_decay_iters=2000", "--dropout=0.0"]


def _ours(variant: str, workdir: str, overrides=(), seed: int = 0):
  """(wall seconds, whole-split validation loss) of one experiment process."""
  cmd = [sys.executable, "-m", "experiments.gpt_shakespeare_char",
         f"--config=experiments/gpt_shakespeare_char.py:{variant}", f"--workdir={workdir}",
         "--config.train.progress_bar=False", f"--config.seed={seed}"]
  cmd += [f"--config.{o}" for o in overrides]
  subprocess.run(["rm", "-rf", workdir], check=True)
  t0 = time.perf_counter()
  subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  wall = time.perf_counter() - t0
  with open(os.path.join(workdir, "summary.json")) as f:
    return wall, json.load(f)["validation_loss"]


def _nanogpt(workdir: str):
  """(wall seconds, nanoGPT's own final 20-batch validation estimate)."""
  t0 = time.perf_counter()
  out = subprocess.run([_NANOGPT_PY.value, "train.py", *_NANO_ARGS, f"--out_dir={workdir}"],
                       cwd=_NANOGPT.value, check=True, capture_output=True, text=True).stdout
  wall = time.perf_counter() - t0
  return wall, float(re.findall(r"val loss ([0-9.]+)", out)[-1])


def _row(name, walls, losses):
  spread = statistics.stdev(losses) if len(losses) > 1 else 0.0
  return (f"| {name} | {statistics.mean(losses):.3f} ± {spread:.3f} | "
          f"{statistics.median(walls):.1f} s |")


def main(argv):
  del argv
  os.makedirs(_WORKDIR.value, exist_ok=True)
  if _NANOGPT.value:
    runs = {"nanoGPT (CPU config)": [], "ours quick": [], "ours fast": []}
    for i in range(_REPEATS.value):  # alternated, so drifts of the machine hit all alike
      runs["nanoGPT (CPU config)"].append(_nanogpt(os.path.join(_WORKDIR.value, "nanogpt")))
      runs["ours quick"].append(_ours("quick", os.path.join(_WORKDIR.value, "quick"), seed=0))
      runs["ours fast"].append(_ours("fast", os.path.join(_WORKDIR.value, "fast"), seed=0))
      print(f"repeat {i + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} s / {v[-1][1]:.4f}"
                                            for k, v in runs.items()), flush=True)
    print("| run | validation loss | wall time (median) |\n|---|---|---|")
    for k, v in runs.items():
      print(_row(k, [w for w, _ in v], [l for _, l in v]))
  rows = list(ABLATIONS) if _ROWS.value == ["all"] else [
      r for r in ABLATIONS if any(r.startswith(x) or x in r for x in _ROWS.value)]
  if _ROWS.value == ["none"]:
    rows = []
  results = {}
  for name in rows:
    walls, losses = [], []
    for seed in map(int, _SEEDS.value):
      wall, loss = _ours("fast", os.path.join(_WORKDIR.value, "ablation"), ABLATIONS[name], seed)
      walls.append(wall)
      losses.append(loss)
    results[name] = (walls, losses)
    print(_row(name, walls, losses), flush=True)
  if results:
    print(f"\n| fast, one technique removed | validation loss ({len(_SEEDS.value)} seeds) | "
          "wall time |\n|---|---|---|")
    for name, (walls, losses) in results.items():
      print(_row(name, walls, losses))
    with open(os.path.join(_WORKDIR.value, "ablation.json"), "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  app.run(main)
