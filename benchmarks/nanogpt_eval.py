"""A nanoGPT checkpoint scored by our whole-split estimator, and by nanoGPT's own 20-batch one.

  NANOGPT_PYTHON benchmarks/nanogpt_eval.py --nanogpt_dir=DIR --ckpt=OUT/ckpt.pt --windows=W.npz
      [--draws=10]

Run with nanoGPT's Python (torch, no jax): this file imports torch only in `main`, so its numpy
part is tested where torch is not installed. W.npz (written by benchmarks/gpt_recipe.py from
aigc_jax.data.tokens) holds our evaluator's windows of the split, `input`, `target` and
`target_mask` (every target once, the last window padded and masked), and `stream`, the split's
tokens, for nanoGPT's random batches. Prints one JSON line: `whole_split` (mean cross-entropy over
all targets), `targets`, `batches20` (nanoGPT's estimate_loss, `eval_iters` batches of
`batch_size` random windows, once per draw seed 0..draws-1) and the checkpoint's `iter_num`.
"""

import argparse
import json
import sys

import numpy as np


def whole_split_loss(token_losses, inputs, targets, mask, batch_size: int = 256) -> float:
  """Mean of `token_losses(inputs, targets)` ([B, L] per-target losses) over the targets `mask`
  keeps: each counts once, however the windows are batched."""
  total, count = 0.0, 0
  for i in range(0, len(inputs), batch_size):
    m = mask[i:i + batch_size]
    losses = token_losses(inputs[i:i + batch_size], targets[i:i + batch_size])
    total += float(np.sum(np.where(m, losses, 0.0), dtype=np.float64))
    count += int(m.sum())
  return total / count


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--nanogpt_dir", required=True)
  p.add_argument("--ckpt", required=True)
  p.add_argument("--windows", required=True)
  p.add_argument("--draws", type=int, default=10)
  args = p.parse_args()
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, args.nanogpt_dir)
  from model import GPT, GPTConfig  # pylint: disable=import-outside-toplevel,import-error

  ckpt = torch.load(args.ckpt, map_location="cpu")
  model = GPT(GPTConfig(**ckpt["model_args"]))
  # sample.py's fix-up: a compiled model's state dict prefixes every key.
  model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
  model.eval()
  w = np.load(args.windows)
  block, cfg = ckpt["model_args"]["block_size"], ckpt["config"]
  if w["input"].shape[1] != block:
    raise SystemExit(f"Windows of {w['input'].shape[1]} tokens, the model's context {block}.")

  @torch.no_grad()
  def token_losses(x, y):
    x, y = (torch.from_numpy(a.astype(np.int64)) for a in (x, y))
    logits, _ = model(x, y)  # with targets nanoGPT returns every position's logits
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(
        y.shape).double().numpy()

  @torch.no_grad()
  def batches20(seed):  # train.py's get_batch and estimate_loss, on its own generator
    g = torch.Generator().manual_seed(seed)
    data = w["stream"]
    losses = []
    for _ in range(cfg["eval_iters"]):
      ix = torch.randint(len(data) - block, (cfg["batch_size"],), generator=g)
      x = np.stack([data[i:i + block] for i in ix])
      y = np.stack([data[i + 1:i + 1 + block] for i in ix])
      losses.append(model(*(torch.from_numpy(a.astype(np.int64)) for a in (x, y)))[1].item())
    return float(np.mean(losses))

  print(json.dumps({
      "whole_split": whole_split_loss(token_losses, w["input"], w["target"], w["target_mask"]),
      "targets": int(w["target_mask"].sum()),
      "batches20": [batches20(s) for s in range(args.draws)],
      "iter_num": int(ckpt["iter_num"])}))


if __name__ == "__main__":
  main()
