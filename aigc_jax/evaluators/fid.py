"""FID and Inception Score computed with one of the project's own classifiers.

A classifier workdir (e.g. from `experiments.cnn_mnist`) supplies class probabilities and the
features of its penultimate layer (the model sows them as intermediates/features). For MNIST-like
data this is the meaningful "Inception" network; its scores are comparable with each other and
with the real-versus-real floor, not with papers' Inception-v3 FID on other data sets.

  FID = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2))  over feature Gaussians
  IS  = exp(E_x KL(p(y|x) || p(y)))                          over class probabilities
"""

import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import checkpoint, writers
from aigc_jax.errors import ConfigError


def gaussian(features_NF) -> tuple[np.ndarray, np.ndarray]:
  f = np.asarray(features_NF, np.float64)
  return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(m):
  w, v = np.linalg.eigh((m + m.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
  """Fréchet distance of two Gaussians. tr((S1 S2)^(1/2)) is taken as the trace of the square
  root of the symmetric S1^(1/2) S2 S1^(1/2), which has the same eigenvalues and stays real."""
  r = _sqrt_psd(s1)
  cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)))
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * cross)


def fid(features_a, features_b) -> float:
  return frechet_distance(*gaussian(features_a), *gaussian(features_b))


def inception_score(probs_NK) -> float:
  """exp(mean KL(p(y|x) || p(y))) with p(y) the mean over all N samples (one split)."""
  p = np.asarray(probs_NK, np.float64)
  marginal = p.mean(axis=0, keepdims=True)
  kl = np.sum(p * (np.log(p + 1e-12) - np.log(marginal + 1e-12)), axis=1)
  return float(np.exp(kl.mean()))


def class_histogram(probs_NK) -> np.ndarray:
  """Fraction of samples whose most likely class is k, for each k."""
  p = np.asarray(probs_NK)
  return np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / len(p)


class Classifier:
  """A trained classifier workdir as a pure function of its parameters: (params, images in
  [0, 1]) -> (features, probs). The parameters are an argument, never a closed-over constant:
  a constant carries its device placement into the jitted caller (jax >= 0.12.1), which then
  clashes with the caller's sharded arguments."""

  def __init__(self, workdir: str):
    preprocess = checkpoint.read_config(workdir).data.preprocess
    if not re.search(r"value_range\(\s*0(\.0*)?\s*,\s*1(\.0*)?\s*\)", preprocess):
      raise ConfigError(f"Classifier in {workdir} was trained with data.preprocess="
                        f"{preprocess!r}; FID/IS feed it images in [0, 1], so it must be trained "
                        "with value_range(0, 1).")
    trained = checkpoint.load_workdir(workdir)
    self.workdir = workdir
    self.model = trained.model()
    self.params = jax.tree.map(np.asarray, trained.variables["params"])  # host: uncommitted

  def apply(self, params, images01_NHWC):
    """Traceable: (penultimate features [N, F], class probabilities [N, K])."""
    logits, inter = self.model.apply({"params": params}, images01_NHWC, train=False,
                                     mutable=["intermediates"])
    feats = inter.get("intermediates", {}).get("features")
    if feats is None:
      raise ConfigError(f"Model {type(self.model).__module__} does not sow its penultimate "
                        "features (self.sow('intermediates', 'features', x)); FID needs them.")
    return feats[0].astype(jnp.float32), jax.nn.softmax(logits.astype(jnp.float32), axis=-1)

  def score(self, images01_NHWC, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Host arrays in, host (features, probs) out, in batches."""
    fn = jax.jit(self.apply)
    params = jax.device_put(self.params)
    out = [jax.device_get(fn(params, jnp.asarray(images01_NHWC[i:i + batch])))
           for i in range(0, len(images01_NHWC), batch)]
    return (np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]))


# The evaluator: FID / IS / class histogram of samples from the task's `sample` function, with
# the real data's values beside them. The real statistics are computed once: features of the
# training split (the FID reference) and of the evaluated split (the real-versus-real floor, and
# the real Inception Score). Generated FID is reported at the evaluated split's size (`fid`, the
# like-for-like comparison with `fid_floor`, since FID's bias shrinks with the number of samples)
# and over all `samples` (`fid_all`).
DEFAULTS = {
    "samples": 10_000,  # generated images scored per evaluation
    # The scorer: a trained classifier workdir. Empty, `python -m aigc_jax.main` (or
    # aigc_jax/tools/scorer.py) fills it in before the run with the experiment `classifier`
    # trained once on this data set's training split and cached by a hash of its config.
    "classifier": "experiments.cnn_mnist",
    "classifier_workdir": "",
    "train_split": "",  # the FID reference; "": data.train_split
    "value_range": (-1.0, 1.0),  # of the samples and of the data's "input"
    "seed_offset": 2,  # noise key PRNGKey(seed + seed_offset), the same at every evaluation
}


def check(name, ec, config) -> None:
  if ec.samples < 1:
    raise ConfigError(f"evals.{name}.samples={ec.samples} must be >= 1 (remove the evaluator "
                      "to skip FID/IS).")


def make(name, ec, ctx):
  config = ctx.config
  sample = ctx.fn("sample", name)
  labels_fn = ctx.task.eval_fns.get("labels", lambda n, grouped: None)
  lo, hi = ec.value_range
  if not ec.classifier_workdir:
    raise ConfigError(
        f"evals.{name}.classifier_workdir is empty: FID/IS score with a trained classifier, "
        "which the evaluator never trains itself. Run through `python -m aigc_jax.main` (it "
        "prepares and caches one), prepare it with `python -m aigc_jax.tools.scorer "
        "--config=...`, or name a classifier workdir.")
  if not os.path.isdir(ec.classifier_workdir):
    raise ConfigError(f"classifier_workdir={ec.classifier_workdir!r} does not exist. Train a "
                      "classifier there (python -m experiments.cnn_mnist --workdir=DIR) or "
                      "leave it empty to have one prepared and cached.")
  classifier = Classifier(ec.classifier_workdir)
  real = {}
  train_split = ec.train_split or config.data.train_split
  for split in (train_split, ec.split):
    data = ctx.split(split)
    images = data.load(np.arange(len(data)))["input"]
    real[split] = classifier.score((np.asarray(images, np.float32) - lo) / (hi - lo))
  ref = gaussian(real[train_split][0])
  held_feats, held_probs = real[ec.split]
  n_held = len(held_feats)
  floor = {"fid_floor": frechet_distance(*ref, *gaussian(held_feats)),
           "is_real": inception_score(held_probs)}
  print(f"Real data under the classifier: IS {floor['is_real']:.3f} ({ec.split} split), "
        f"FID floor {floor['fid_floor']:.3f} ({ec.split} vs {train_split} split)", flush=True)
  b, n = ec.batch_size, ec.samples
  labels = labels_fn(n, False)

  # Replicated over the run's mesh, beside the sharded variables it is called with.
  replicated = jax.sharding.NamedSharding(ctx.mesh, jax.sharding.PartitionSpec())
  params = jax.device_put(classifier.params, replicated)

  @jax.jit
  def sample_and_score(variables, params, key, labels):
    return classifier.apply(params, (sample(variables, key, b, labels) - lo) / (hi - lo))

  def run(variables, step, rng):
    del rng  # the same noise at every evaluation, so scores compare across steps
    key = jax.random.PRNGKey(config.seed + ec.seed_offset)
    feats, probs = [], []
    for i in range(-(-n // b)):
      lab = None if labels is None else jnp.asarray(np.resize(labels[i * b:(i + 1) * b], b),
                                                    jnp.int32)
      f, p = jax.device_get(sample_and_score(variables, params, jax.random.fold_in(key, i), lab))
      feats.append(f)
      probs.append(p)
    feats, probs = np.concatenate(feats)[:n], np.concatenate(probs)[:n]
    hist = class_histogram(probs)
    out = dict(floor)
    out["fid"] = frechet_distance(*ref, *gaussian(feats[:n_held]))
    out["fid_all"] = frechet_distance(*ref, *gaussian(feats))
    out["is"] = inception_score(probs)
    out["is_ratio"] = out["is"] / out["is_real"]
    out["fid_ratio"] = out["fid"] / max(out["fid_floor"], 1e-12)
    out["class_min"], out["class_max"] = float(hist.min()), float(hist.max())
    if labels is not None:
      out["label_agreement"] = float(np.mean(probs.argmax(axis=1) == labels[:n]))
    if jax.process_index() == 0:
      record = {"step": int(step), "samples": n, "class_fractions": hist.round(4).tolist(), **out}
      path = os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}.json")
      writers.atomic_write(path, json.dumps(record, indent=1))
    return out

  return run
