"""Image-text retrieval recall@k, both ways, over every pair of a captioned split: for each
image, is its caption among the k captions nearest to it (i2t), and for each caption, is its
image among the k nearest images (t2i)? Pairs that say the same thing are interchangeable and
count as hits: on a composed data set (mnist_captions: `digits` and `layout` features) every
caption of the same composition, in whatever words ("a 3 above a 5", "the number five below
the digit 3"); otherwise identical captions. Where the batches carry the task's hard negatives
(`image_text.negatives`), `negative_accuracy` is how often an image is nearer its own caption
than its negative (on a composed data set, over its two-digit images, whose negatives swap the
digits: 50% for a text tower that reads a bag of words).
"""

import jax
import numpy as np

from aigc_jax import evaluators
from aigc_jax.errors import ConfigError

DEFAULTS = {"ks": (1, 5)}


def check(name, ec, config) -> None:
  del config
  if not ec.ks or min(ec.ks) < 1:
    raise ConfigError(f"evals.{name}.ks={tuple(ec.ks)}: give recall cut-offs >= 1.")


def recall_at_k(sim_NN: np.ndarray, groups_N: np.ndarray, ks) -> dict:
  """{i2t_r{k}, t2i_r{k}}: sim[i, j] = image i against caption j; groups: pairs that say the
  same thing."""
  out = {}
  for way, s in (("i2t", sim_NN), ("t2i", sim_NN.T)):
    order = np.argsort(-s, axis=1, kind="stable")
    hit = groups_N[order] == groups_N[:, None]  # retrieved item's caption == the query's
    for k in ks:
      out[f"{way}_r{k}"] = float(np.mean(hit[:, :k].any(axis=1)))
  return out


def make(name, ec, ctx):
  spec = ctx.split(ec.split).example_spec()
  if "caption" not in spec:
    raise ConfigError(f"Evaluator {name!r} needs captions, but split {ec.split!r} has "
                      f"{sorted(spec)}.")
  embed_image = ctx.fn("embed_image", name)
  embed_text = ctx.fn("embed_text", name)
  both = jax.jit(lambda v, x, t: (embed_image(v, x), embed_text(v, t)),
                 in_shardings=(ctx.variables_sharding, ctx.batch_sharding, ctx.batch_sharding))
  neg = ctx.config.get("image_text", {}).get("negatives", "")
  neg = neg if neg in spec else ""
  text = jax.jit(embed_text, in_shardings=(ctx.variables_sharding, ctx.batch_sharding))

  def run(variables, step, rng):
    del step, rng
    us, vs, ids, wins = [], [], [], []
    for batch in ctx.batches(ec.split, ec.batch_size):
      mask = evaluators.to_host(batch["mask"]).astype(bool)
      u, v = both(variables, batch["input"], batch["caption"])
      us.append(evaluators.to_host(u)[mask])
      vs.append(evaluators.to_host(v)[mask])
      if neg:
        w = evaluators.to_host(text(variables, batch[neg]))[mask]
        won = np.sum(us[-1] * vs[-1], 1) > np.sum(us[-1] * w, 1)
        if "layout" in batch:  # composed images: the pairs, whose negatives swap their digits
          won = won[evaluators.to_host(batch["layout"])[mask] > 0]
        wins.append(won)
      what = [batch[k] for k in ("layout", "digits") if k in batch] or [batch["caption"]]
      ids.append(np.concatenate([evaluators.to_host(x).reshape(len(mask), -1)
                                 for x in what], axis=1)[mask])
    u, v, ids = np.concatenate(us), np.concatenate(vs), np.concatenate(ids)
    _, groups = np.unique(ids, axis=0, return_inverse=True)
    out = recall_at_k(u @ v.T, groups.reshape(-1), ec.ks)
    if neg:
      out["negative_accuracy"] = float(np.mean(np.concatenate(wins)))
    return out

  return run
