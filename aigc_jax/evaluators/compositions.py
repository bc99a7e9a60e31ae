"""Does a text-to-image model draw what the caption says? Scored by a classifier that never saw
the generator: the project's MNIST scorer reads each slot of every generated image.

For the first `samples` examples of a captioned split (mnist_captions: caption, digits, layout),
the task's sampler draws one image per caption. Each slot the layout defines (the whole canvas;
the left / right or top / bottom half) is cropped 28x28 around its ink's centre of mass, the
way MNIST centres its digits, and classified. Metrics:
- digit_accuracy: requested digits found in the image's slots, in any order;
- relation_accuracy: two-digit captions whose digits both stand where the caption puts them;
- exact_accuracy: images with every slot right;
- swap_rate: two-digit captions drawn with both digits but in each other's place (a text
  encoder that reads captions as bags of words scores about as many swaps as relations);
- fid: Frechet distance of the scorer's features of the generated slot crops against the real
  images' crops of the same examples (fid_floor: the real crops against the training split's);
- real_*: the same scoring of the real images, the ceiling the scorer allows.
A grid of the first `grid` captions beside their images is written to samples/.

`fn="reconstruct"` scores the task's reconstructions of the real images instead of samples
(an autoencoder's round trip): the ceiling that autoencoder sets for a latent generator.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import writers
from aigc_jax.data import tokens
from aigc_jax.data.builders import mnist_captions
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators import fid as fid_lib

DIGIT = mnist_captions.DIGIT
DEFAULTS = {
    "samples": 500,
    "grid": 24,  # captions drawn in the picture (0: none)
    "classifier": "experiments.cnn_mnist",  # prepared on classifier_data (tools/scorer.py)
    "classifier_workdir": "",
    "classifier_data": "mnist_idx",  # the single digits it is trained on
    "value_range": (-1.0, 1.0),
    "seed_offset": 4,
    "fn": "sample",  # sample: images drawn from the captions | reconstruct: real images' round trip
}
FNS = ("sample", "reconstruct")


def check(name, ec, config) -> None:
  del config
  if ec.samples < 2:
    raise ConfigError(f"evals.{name}.samples={ec.samples} must be >= 2.")
  if ec.fn not in FNS:
    raise ConfigError(f"evals.{name}.fn={ec.fn!r}; valid: {', '.join(FNS)}.")


def slot_crops(images01_NHW: np.ndarray, layouts_N: np.ndarray):
  """(crops [M, 28, 28, 1], owner [M], slot [M]): every slot of every image, 28x28 around its
  ink's centre of mass within the slot's half (its centre where it has no ink), ink outside
  the half blanked."""
  n, h, w = images01_NHW.shape
  crops, owner, slot = [], [], []
  for i in range(n):
    for s, (y0, y1, x0, x1) in enumerate(mnist_captions.slot_boxes(int(layouts_N[i]), h)):
      region = images01_NHW[i, y0:y1, x0:x1]
      mass = region.sum()
      if mass > 1e-6:
        ys, xs = np.mgrid[y0:y1, x0:x1]
        cy, cx = (ys * region).sum() / mass, (xs * region).sum() / mass
      else:
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
      # On a canvas padded by half a digit, so a digit at the edge is centred too (the
      # scorer's accuracy drops with a few pixels' shift); the slot's half only, so no ink of
      # its neighbour.
      half = DIGIT // 2
      own = np.zeros((h + DIGIT, w + DIGIT), images01_NHW.dtype)
      own[y0 + half:y1 + half, x0 + half:x1 + half] = region
      top, left = int(round(cy)), int(round(cx))  # cy - half, shifted by the padding
      crops.append(own[top:top + DIGIT, left:left + DIGIT])
      owner.append(i)
      slot.append(s)
  return np.stack(crops)[..., None], np.array(owner), np.array(slot)


def accuracies(pred_M, owner_M, slot_M, digits_N2, layouts_N) -> dict:
  """Digit, relation and exact accuracy of slot predictions against the requested digits."""
  n = len(layouts_N)
  found = requested = 0
  exact = np.zeros(n, bool)
  swapped = np.zeros(n, bool)
  for i in range(n):
    want = [int(d) for d in digits_N2[i] if d >= 0]
    got = pred_M[owner_M == i][np.argsort(slot_M[owner_M == i])].tolist()
    requested += len(want)
    found += sum(min(want.count(d), got.count(d)) for d in set(want))
    exact[i] = got == want
    swapped[i] = len(want) == 2 and want[0] != want[1] and got == want[::-1]
  pairs = np.asarray(layouts_N) > 0
  return {"digit_accuracy": found / max(requested, 1),
          "relation_accuracy": float(exact[pairs].mean()) if pairs.any() else float("nan"),
          "exact_accuracy": float(exact.mean()),
          "swap_rate": float(swapped[pairs].mean()) if pairs.any() else float("nan")}


def caption_grid(images01_NHW, captions, marks, path: str, ncol: int = 6) -> None:
  """Each image (3x) with its caption under it, a mark (ok / x) saying if the scorer agreed."""
  from PIL import Image, ImageDraw  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel
  import textwrap  # pylint: disable=import-outside-toplevel
  scale, text_h = 3, 40
  h, w = images01_NHW.shape[1:3]
  cw, ch = w * scale + 8, h * scale + text_h
  rows = -(-len(captions) // ncol)
  canvas = Image.new("L", (ncol * cw, rows * ch), 255)
  draw = ImageDraw.Draw(canvas)
  for i, (img, cap, ok) in enumerate(zip(images01_NHW, captions, marks)):
    r, c = divmod(i, ncol)
    tile = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    canvas.paste(tile.resize((w * scale, h * scale), Image.NEAREST), (c * cw + 4, r * ch))
    lines = textwrap.wrap(("ok  " if ok else "x  ") + cap, width=cw // 6)[:3]
    draw.multiline_text((c * cw + 4, r * ch + h * scale + 1), "\n".join(lines), fill=0)
  buf = io.BytesIO()
  canvas.save(buf, format="PNG")
  writers.atomic_write(path, buf.getvalue())


def make(name, ec, ctx):
  config = ctx.config
  sample = ctx.fn(ec.fn, name)
  split = ctx.split(ec.split)
  spec = split.example_spec()
  missing = {"input", "caption", "digits", "layout"} - set(spec)
  if missing:
    raise ConfigError(f"Evaluator {name!r} scores captioned compositions (mnist_captions) but "
                      f"split {ec.split!r} lacks {sorted(missing)}.")
  if not ec.classifier_workdir:
    raise ConfigError(f"evals.{name}.classifier_workdir is empty: run through `python -m "
                      "aigc_jax.main`, which prepares the scorer, or name a classifier workdir.")
  n = min(ec.samples, len(split))
  data = split.load(np.arange(n))
  lo, hi = ec.value_range
  to01 = lambda x: np.clip((np.asarray(x, np.float32) - lo) / (hi - lo), 0.0, 1.0)
  classifier = fid_lib.Classifier(ec.classifier_workdir)
  real_crops, owner, slot = slot_crops(to01(data["input"])[..., 0], data["layout"])
  real_feats, real_probs = classifier.score(real_crops)
  real = {f"real_{k}": v for k, v in accuracies(real_probs.argmax(1), owner, slot,
                                                 data["digits"], data["layout"]).items()}
  train = ctx.split(config.data.train_split)
  t = train.load(np.arange(min(n, len(train))))
  train_feats, _ = classifier.score(slot_crops(to01(t["input"])[..., 0], t["layout"])[0])
  real["fid_floor"] = fid_lib.fid(real_feats, train_feats)
  if data["caption"].dtype.kind in "iu":  # token ids (a text-conditioned task's data)
    tok = tokens.get_tokenizer(config.data)
    texts = [tok.decode(row[row >= 0]) for row in data["caption"][:ec.grid]]
  else:  # raw captions (an autoencoder's data)
    texts = [c.decode() if isinstance(c, bytes) else str(c) for c in data["caption"][:ec.grid]]

  b = ec.batch_size
  if ec.fn == "sample":
    draw = jax.jit(lambda v, k, c: sample(v, k, b, c))
    inputs = data["caption"]
  else:
    draw = jax.jit(lambda v, k, x: sample(v, {"input": x}, k))
    inputs = data["input"]

  def run(variables, step, rng):
    del rng  # the same noise at every evaluation
    key = jax.random.PRNGKey(config.seed + ec.seed_offset)
    images = []
    for i in range(-(-n // b)):
      rows = np.resize(inputs[i * b:(i + 1) * b], (b,) + inputs.shape[1:])
      images.append(jax.device_get(draw(variables, jax.random.fold_in(key, i),
                                        jnp.asarray(rows))))
    gen = to01(np.concatenate(images)[:n])[..., 0]
    crops, owner_g, slot_g = slot_crops(gen, data["layout"])
    feats, probs = classifier.score(crops)
    pred = probs.argmax(1)
    out = accuracies(pred, owner_g, slot_g, data["digits"], data["layout"])
    out["fid"] = fid_lib.fid(feats, real_feats)
    out.update(real)
    if ec.grid and jax.process_index() == 0:
      marks = [pred[owner_g == i].tolist() == [d for d in data["digits"][i] if d >= 0]
               for i in range(len(texts))]
      caption_grid(gen[:len(texts)], texts, marks,
                   os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.png"))
    return out

  return run

