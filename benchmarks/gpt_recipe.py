"""The fast GPT recipe against nanoGPT, and its ablation: wall time to quality, start to finish.

  python -m benchmarks.gpt_recipe --workdir=/tmp/recipe [--seeds=0,1,2] [--rows=all]
      [--nanogpt_dir=PATH --nanogpt_python=PATH [--ours=quick,fast] [--nanogpt_eval]
       [--nanogpt_same_train]]

Each row runs `experiments/gpt_shakespeare_char.py:fast` as a new process (start-up, compiling,
the final whole-split evaluation and sample included) with one technique removed, once per seed,
and prints the median wall time and the test loss's mean and spread. With --nanogpt_dir (a
checkout of nanoGPT with data/shakespeare_char prepared) it first alternates, once per seed,
nanoGPT's CPU configuration, as its README gives it, with ours (--ours), back to back, so both
see the same machine. With --nanogpt_eval (the default; needs $AIGC_JAX_DATA) each nanoGPT
run's final checkpoint is then scored by our estimator on the whole test split, which is nanoGPT's
val.bin character for character (checked), by benchmarks/nanogpt_eval.py under --nanogpt_python,
next to nanoGPT's own 20-batch estimate. nanoGPT trains on the first 90% of the characters,
ours on the first 85.5% (the rest of its 90% is our validation split); --nanogpt_same_train
trains nanoGPT on our train split too (data/shakespeare_char_ours, written here). Rows go to
WORKDIR/side_by_side.json. Never run it beside other work: it is a timing.
"""

import json
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

from aigc_jax.data import tokens
from experiments import gpt_shakespeare_char

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/gpt_recipe", "Where the runs go.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds per row, and side-by-side runs.")
_ROWS = flags.DEFINE_list("rows", ["all"], "Ablation rows to run (names below), or all, or none.")
_NANOGPT = flags.DEFINE_string("nanogpt_dir", "", "A nanoGPT checkout to time side by side.")
_NANOGPT_PY = flags.DEFINE_string("nanogpt_python", "python", "Python with torch for nanoGPT.")
_OURS = flags.DEFINE_list("ours", ["quick", "fast"], "Our variants run beside nanoGPT.")
_NANOGPT_EVAL = flags.DEFINE_bool("nanogpt_eval", True, "Score nanoGPT's checkpoints on the "
                                  "whole test split by our estimator.")
_DRAWS = flags.DEFINE_integer("draws", 10, "Redraws of nanoGPT's 20-batch estimate per run.")
_SAME_TRAIN = flags.DEFINE_bool("nanogpt_same_train", False, "Train nanoGPT on our train split "
                                "(its training text less our validation, the last 5%).")
_SAME_TRAIN_DATASET = "shakespeare_char_ours"  # nanoGPT's data/<name>/ for --nanogpt_same_train

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
# always_save_checkpoint: ckpt.pt is the final model, whose estimate the log ends with, not the
# best by that estimate (a choice on the split the loss is reported on).
_NANO_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
              "--eval_iters=20", "--log_interval=1", "--block_size=64", "--batch_size=12",
              "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
              "--lr_decay_iters=2000", "--dropout=0.0", "--always_save_checkpoint=True"]
# nanoGPT has no seed option: train.py calls torch.manual_seed(1337 + seed_offset) and sets
# seed_offset = 0 after reading its config files, which it execs in its own globals; so this one
# offsets torch.manual_seed itself (seed 0 is nanoGPT's own run).
_NANO_SEED = ("_manual_seed = torch.manual_seed\n"
              "torch.manual_seed = lambda s: _manual_seed(s + {})\n")


def _ours(variant: str, workdir: str, overrides=(), seed: int = 0):
  """(wall seconds, whole-split test loss) of one experiment process."""
  cmd = [sys.executable, "-m", "experiments.gpt_shakespeare_char",
         f"--config=experiments/gpt_shakespeare_char.py:{variant}", f"--workdir={workdir}",
         "--config.train.progress_bar=False", f"--config.seed={seed}"]
  cmd += [f"--config.{o}" for o in overrides]
  subprocess.run(["rm", "-rf", workdir], check=True)
  t0 = time.perf_counter()
  subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  wall = time.perf_counter() - t0
  with open(os.path.join(workdir, "summary.json")) as f:
    return wall, json.load(f)["test_loss"]


def _nanogpt(workdir: str, seed: int):
  """(wall seconds, nanoGPT's own final 20-batch validation estimate); its checkpoint is left in
  workdir/ckpt.pt."""
  os.makedirs(workdir, exist_ok=True)
  seed_file = os.path.join(workdir, f"seed{seed}.py")
  with open(seed_file, "w") as f:
    f.write(_NANO_SEED.format(seed))
  ckpt = os.path.join(workdir, "ckpt.pt")
  if os.path.exists(ckpt):
    os.remove(ckpt)
  t0 = time.perf_counter()
  data = [f"--dataset={_SAME_TRAIN_DATASET}"] if _SAME_TRAIN.value else []
  out = subprocess.run([_NANOGPT_PY.value, "train.py", *_NANO_ARGS, *data, seed_file,
                        f"--out_dir={workdir}"],
                       cwd=_NANOGPT.value, check=True, capture_output=True, text=True).stdout
  wall = time.perf_counter() - t0
  return wall, float(re.findall(r"val loss ([0-9.]+)", out)[-1])


def prepare_nanogpt_data(windows: str) -> None:
  """Checks that nanoGPT's prepared data is ours (the vocabulary, val.bin our test split token
  for token) and writes our evaluator's windows of the test split (aigc_jax.data.tokens, as
  `fast` evaluates it) to `windows`; with --nanogpt_same_train also nanoGPT's data set of our
  train split."""
  data = gpt_shakespeare_char.get_config("fast").data
  split = tokens.load_split(data, "test")
  ours = tokens.get_tokenizer(data).chars
  nano_dir = os.path.join(_NANOGPT.value, "data", "shakespeare_char")
  with open(os.path.join(nano_dir, "meta.pkl"), "rb") as f:
    itos = pickle.load(f)["itos"]
  val = np.fromfile(os.path.join(nano_dir, "val.bin"), np.uint16)
  if ours != "".join(itos[i] for i in range(len(itos))) or not np.array_equal(split.stream, val):
    raise SystemExit("Our test split or vocabulary is not nanoGPT's val.bin and meta.pkl; "
                     "prepare nanoGPT's data from the same input.txt.")
  np.savez(windows, stream=val, **split.load(np.arange(len(split))))
  if _SAME_TRAIN.value:
    train = tokens.load_split(data, data.train_split).stream
    out = os.path.join(_NANOGPT.value, "data", _SAME_TRAIN_DATASET)
    os.makedirs(out, exist_ok=True)
    np.asarray(train, np.uint16).tofile(os.path.join(out, "train.bin"))
    for name in ("val.bin", "meta.pkl"):
      shutil.copy(os.path.join(nano_dir, name), out)


def _nanogpt_eval(ckpt: str, windows: str) -> dict:
  """benchmarks/nanogpt_eval.py's scores of a checkpoint, run under nanoGPT's Python."""
  helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nanogpt_eval.py")
  out = subprocess.run([_NANOGPT_PY.value, helper, f"--nanogpt_dir={_NANOGPT.value}",
                        f"--ckpt={ckpt}", f"--windows={windows}", f"--draws={_DRAWS.value}"],
                       check=True, capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def _mean_std(xs) -> str:
  return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.3f}"


def _cell(rows, key, digits=3) -> str:
  """rows' `key`: the value of one row, the mean ± std of several, "" where it is missing."""
  if key not in rows[0]:
    return ""
  return f"{rows[0][key]:.{digits}f}" if len(rows) == 1 else _mean_std([r[key] for r in rows])


def _row(name, walls, losses):
  return f"| {name} | {_mean_std(losses)} | {statistics.median(walls):.1f} s |"


def side_by_side(seeds) -> list[dict]:
  """nanoGPT's CPU configuration and our --ours variants, alternated seed by seed, so drifts of
  the machine hit all alike; one row per run."""
  windows = os.path.join(_WORKDIR.value, "test_windows.npz")
  if _NANOGPT_EVAL.value or _SAME_TRAIN.value:
    prepare_nanogpt_data(windows)
  rows = []
  for seed in seeds:
    nano_dir = os.path.join(_WORKDIR.value, "nanogpt")
    wall, estimate = _nanogpt(nano_dir, seed)
    run = "nanoGPT (CPU config" + (", our train split)" if _SAME_TRAIN.value else ")")
    row = {"run": run, "seed": seed, "wall_s": wall, "log_batches20": estimate}
    if _NANOGPT_EVAL.value:
      scores = _nanogpt_eval(os.path.join(nano_dir, "ckpt.pt"), windows)
      row.update(test_loss=scores.pop("whole_split"), **scores)
    rows.append(row)
    for variant in _OURS.value:
      wall, loss = _ours(variant, os.path.join(_WORKDIR.value, variant), seed=seed)
      rows.append({"run": f"ours {variant}", "seed": seed, "wall_s": wall, "test_loss": loss})
    print(f"seed {seed}: " + ", ".join(f"{r['run']} {r['wall_s']:.1f} s / "
                                       f"{r.get('test_loss', float('nan')):.4f}"
                                       for r in rows if r["seed"] == seed), flush=True)
  with open(os.path.join(_WORKDIR.value, "side_by_side.json"), "w") as f:
    json.dump(rows, f, indent=1)
  print("\nWall times are only meaningful on an idle machine.\n"
        "| run | seed | test loss (whole split, our estimator) | nanoGPT's 20-batch estimate: "
        "its log; redraws | wall time |\n|---|---|---|---|---|")
  for r in rows:
    est = _cell([r], "log_batches20", 4) + ("; " + _mean_std(r["batches20"])
                                            if "batches20" in r else "")
    print(f"| {r['run']} | {r['seed']} | {_cell([r], 'test_loss', 4)} | {est} | "
          f"{r['wall_s']:.1f} s |")
  print(f"\n| run | test loss ({len(seeds)} seeds) | 20-batch estimate (its log) | wall time "
        "(median; each seed) |\n|---|---|---|---|")
  for run in dict.fromkeys(r["run"] for r in rows):
    rs = [r for r in rows if r["run"] == run]
    walls = [r["wall_s"] for r in rs]
    print(f"| {run} | {_cell(rs, 'test_loss')} | {_cell(rs, 'log_batches20')} | "
          f"{statistics.median(walls):.1f} s; {', '.join(f'{w:.1f}' for w in walls)} |")
  return rows


def main(argv):
  del argv
  os.makedirs(_WORKDIR.value, exist_ok=True)
  if _NANOGPT.value:
    side_by_side(list(map(int, _SEEDS.value)))
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
    print(f"\n| fast, one technique removed | test loss ({len(_SEEDS.value)} seeds) | "
          "wall time |\n|---|---|---|")
    for name, (walls, losses) in results.items():
      print(_row(name, walls, losses))
    with open(os.path.join(_WORKDIR.value, "ablation.json"), "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  app.run(main)
