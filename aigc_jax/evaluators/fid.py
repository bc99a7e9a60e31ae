"""FID and Inception Score computed with one of the project's own classifiers.

A classifier workdir (e.g. from `experiments.cnn_mnist`) supplies class probabilities and the
features of its penultimate layer (the model sows them as intermediates/features). For MNIST-like
data this is the meaningful "Inception" network; its scores are comparable with each other and
with the real-versus-real floor, not with papers' Inception-v3 FID on other data sets.

  FID = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2))  over feature Gaussians
  IS  = exp(E_x KL(p(y|x) || p(y)))                          over class probabilities
"""

import hashlib
import importlib
import json
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import checkpoint, models
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
  """A trained classifier workdir as a pure function: images in [0, 1] -> (features, probs)."""

  def __init__(self, workdir: str):
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
      raise ConfigError(f"Classifier workdir {workdir} has no config.json: it is not a training "
                        "workdir. Train one (python -m experiments.cnn_mnist --workdir=DIR) or "
                        "leave gan.classifier_workdir empty to train one automatically.")
    with open(path) as f:
      config = ml_collections.ConfigDict(json.load(f))
    if not re.search(r"value_range\(\s*0(\.0*)?\s*,\s*1(\.0*)?\s*\)", config.data.preprocess):
      raise ConfigError(f"Classifier in {workdir} was trained with data.preprocess="
                        f"{config.data.preprocess!r}; FID/IS feed it images in [0, 1], so it must "
                        "be trained with value_range(0, 1).")
    self.workdir = workdir
    self.model = models.get_model(config.model)
    self.params = jax.device_put(checkpoint.restore_params(workdir))

  def __call__(self, images01_NHWC):
    """Traceable: (penultimate features [N, F], class probabilities [N, K])."""
    logits, inter = self.model.apply({"params": self.params}, images01_NHWC, train=False,
                                     mutable=["intermediates"])
    feats = inter.get("intermediates", {}).get("features")
    if feats is None:
      raise ConfigError(f"Model {type(self.model).__module__} does not sow its penultimate "
                        "features (self.sow('intermediates', 'features', x)); FID needs them.")
    return feats[0].astype(jnp.float32), jax.nn.softmax(logits.astype(jnp.float32), axis=-1)

  def score(self, images01_NHWC, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Host arrays in, host (features, probs) out, in batches."""
    fn = jax.jit(self.__call__)
    out = [jax.device_get(fn(jnp.asarray(images01_NHWC[i:i + batch])))
           for i in range(0, len(images01_NHWC), batch)]
    return (np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]))


def cache_root() -> str:
  return os.environ.get("AIGC_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                          "aigc_jax")


def classifier_workdir(config) -> str:
  """`gan.classifier_workdir` if set (it must exist), else a classifier trained once on this
  data set's training split with the experiment module `gan.classifier` and cached under
  $AIGC_JAX_CACHE (default ~/.cache/aigc_jax)/classifiers/."""
  g = config.gan
  if g.classifier_workdir:
    if not os.path.isdir(g.classifier_workdir):
      raise ConfigError(f"gan.classifier_workdir={g.classifier_workdir!r} does not exist. Train "
                        "a classifier there (python -m experiments.cnn_mnist --workdir=DIR) or "
                        "leave it empty to train and cache one automatically.")
    return g.classifier_workdir
  try:
    c = importlib.import_module(g.classifier).get_config()
  except ImportError as e:
    raise ConfigError(f"gan.classifier={g.classifier!r} is not an importable experiment module "
                      f"({e}); run from the repository root or set gan.classifier_workdir.") from e
  for k in ("name", "data_dir", "tfds_dir", "train_split", "eval_split", "cache"):
    c.data[k] = config.data[k]
  c.train.progress_bar = config.train.progress_bar
  key = hashlib.sha256(c.to_json_best_effort(sort_keys=True).encode()).hexdigest()[:10]
  name = re.sub(r"[^A-Za-z0-9_.-]", "_", config.data.name)
  workdir = os.path.join(cache_root(), "classifiers", f"{name}-{key}")
  if not os.path.exists(os.path.join(workdir, "summary.json")):
    print(f"Training the evaluation classifier ({g.classifier}) once into {workdir} ...",
          flush=True)
    from aigc_jax import train  # pylint: disable=import-outside-toplevel  (train imports tasks)
    train.run(c, workdir)
  return workdir
