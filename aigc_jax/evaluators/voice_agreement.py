"""Does generated speech sound like the voice asked for? A trained speaker classifier decides.

`per_voice` clips of `seconds` for every voice are generated with the task's `sample_audio`
(voice-conditioned) and classified by the scorer (experiments/speaker_id.py, trained once and
cached like the image scorers: aigc_jax/tools/scorer.py). Reported:
- `agreement`: the share of clips classified as the voice they were generated for;
- `real_accuracy`: the scorer's accuracy on the split's real utterances cut to the same
  length, the ceiling;
- `frechet`: the Frechet distance between the scorer's embeddings of generated and real
  clips (as FID), and `frechet_floor`: the same between two halves of the real clips.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import audio, checkpoint
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators.fid import frechet_distance, gaussian

DEFAULTS = {
    "per_voice": 20,
    "seconds": 1.0,
    "temperature": 1.0,
    "classifier": "experiments.speaker_id",
    "classifier_workdir": "",
}


def check(name, ec, config):
  cond = audio.conditions(config)
  if cond != {"voice"}:
    raise ConfigError(f"Evaluator {name!r} asks for voices from nothing else: it needs a model "
                      f"conditioned on the voice only (audio_lm.condition='voice', not "
                      f"{config.audio_lm.condition!r}); a mel-conditioned one is scored by the "
                      "vocoder evaluator.")


class SpeakerScorer:
  """A trained speaker classifier workdir: (params, audio [N, T]) -> (embeddings, probs)."""

  def __init__(self, workdir: str):
    if not os.path.isdir(workdir):
      raise ConfigError(f"classifier_workdir={workdir!r} does not exist: train one there "
                        "(python -m experiments.speaker_id --workdir=DIR) or leave it empty to "
                        "have it prepared and cached.")
    trained = checkpoint.load_workdir(workdir)
    self.model = trained.model()
    self.params = jax.tree.map(np.asarray, trained.variables["params"])

  def apply(self, params, audio_NT):
    logits, inter = self.model.apply({"params": params}, audio_NT, mutable=["intermediates"])
    return (inter["intermediates"]["features"][0].astype(jnp.float32),
            jax.nn.softmax(logits.astype(jnp.float32), axis=-1))

  def score(self, audio_NT, batch: int = 256):
    fn = jax.jit(self.apply)
    out = [jax.device_get(fn(self.params, jnp.asarray(audio_NT[i:i + batch])))
           for i in range(0, len(audio_NT), batch)]
    return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])


def make(name, ec, ctx):
  if not ec.classifier_workdir:
    raise ConfigError(f"evals.{name}.classifier_workdir is empty: run through `python -m "
                      "aigc_jax.main` (it trains and caches the speaker classifier), prepare it "
                      "with `python -m aigc_jax.tools.scorer --config=...`, or name a workdir.")
  sample_audio = ctx.fn("sample_audio", name)
  scorer = SpeakerScorer(ec.classifier_workdir)
  key = ctx.config.audio_lm.voice_key
  cache = {}

  def real(split):
    if "real" not in cache:
      n = int(round(ec.seconds * split.rate))
      clips = np.zeros((len(split.lengths), n), np.float32)
      for i in range(len(split.lengths)):
        x = split.utterance(i)[:n]
        clips[i, :len(x)] = x
      feats, probs = scorer.score(clips)
      labels = split.labels[key]
      half = np.random.default_rng(0).permutation(len(feats))
      a, b = half[:len(half) // 2], half[len(half) // 2:]
      cache["real"] = (feats, float(np.mean(probs.argmax(-1) == labels)),
                       frechet_distance(*gaussian(feats[a]), *gaussian(feats[b])))
    return cache["real"]

  def run(variables, step, rng):
    del rng
    split = ctx.split(ec.split)
    feats_real, accuracy, floor = real(split)
    voices = np.repeat(np.arange(int(split.labels[key].max()) + 1), ec.per_voice)
    fake = np.asarray(jax.device_get(sample_audio(
        variables, jax.random.PRNGKey(step + 1), num_samples=int(round(ec.seconds * split.rate)),
        batch=len(voices), voice=jnp.asarray(voices, jnp.int32), temperature=ec.temperature)))
    feats, probs = scorer.score(fake)
    return {"agreement": float(np.mean(probs.argmax(-1) == voices)), "real_accuracy": accuracy,
            "frechet": frechet_distance(*gaussian(feats), *gaussian(feats_real)),
            "frechet_floor": floor}

  return run
