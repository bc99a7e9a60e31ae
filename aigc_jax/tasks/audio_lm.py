"""Autoregressive audio: next-sample prediction over mu-law codes (WaveNet), the lm task's loss.

The batch holds windows of raw samples (data.audio, aigc_jax/data/audio.py). Inside the step
they are mu-law quantised (`audio_lm.bits`), shifted by one sample into the model's input (a
window's first input is silence, inside its unscored context) and, with `audio_lm.condition`
naming "mel", turned into a log-mel spectrogram: all on the device (aigc_jax/audio.py). "voice"
conditions on the data set's `audio_lm.voice_key` feature. The loss, metrics and finalize are
tasks/lm.py's; evaluation scores every sample of every utterance once with its full receptive
field, in bits per sample, beside the entropy of the same samples' mu-law codes (what a model that
ignores the past would reach at best).
"""

import dataclasses
import math

import jax.numpy as jnp
import ml_collections
import numpy as np

from aigc_jax import audio, evaluators, models
from aigc_jax.data import audio as audio_data
from aigc_jax.data import sources
from aigc_jax.errors import ConfigError
from aigc_jax.models import wavenet
from aigc_jax.samplers import audio as audio_sampler
from aigc_jax.tasks import lm

def configure(c) -> None:
  c.audio_lm = ml_collections.ConfigDict({
      "bits": 8,  # mu-law quantisation levels: 2**bits
      "condition": "",  # "", "voice", "mel" or "voice,mel"
      "voice_key": "voice",  # the data set's integer feature conditioned on
      # Log-mel features (mel conditioning, vocoding): STFT size and hop in samples, mel bands.
      "n_fft": 1024, "hop": 256, "n_mels": 80, "fmin": 0.0, "fmax": 0.0,
  })
  c.evals.samples = evaluators.spec("audio_sample")


def check(config) -> None:
  """Errors before compiling: the receptive field must fit the context of every window."""
  if config.model.name != "wavenet":
    return
  R = wavenet.receptive_field(config.model)
  ac = config.data.audio
  if R > ac.context:
    raise ConfigError(f"The WaveNet's receptive field is {R} samples but data.audio.context="
                      f"{ac.context}: scored samples would see less than their receptive field. "
                      f"Set data.audio.context >= {R} and data.audio.window above it (or use "
                      "fewer layers: model.layers_per_stack, model.stacks).")


def make(config):
  if not config.data.audio.window:
    raise ConfigError("task 'audio_lm' reads windows of samples: set data.audio.window (and "
                      "data.audio.context to the model's receptive field).")
  cond = audio.conditions(config)
  a = config.audio_lm
  split = audio_data.load_split(config.data, config.data.eval_split)
  check(config)
  rate = split.rate
  overrides = {"vocab_size": 2**a.bits}
  if "voice" in cond:
    if a.voice_key not in split.labels:
      raise ConfigError(f"audio_lm.condition has 'voice' but the data has no integer "
                        f"{a.voice_key!r} feature (it has {sorted(split.labels)}); set "
                        "audio_lm.voice_key.")
    overrides["num_voices"] = num_voices(config, split)
  if "mel" in cond:
    overrides.update(mel_channels=a.n_mels, mel_hop=a.hop)
  model = models.get_model(config.model, **overrides)
  log_mel = audio.mel_fn(config, rate)

  def to_mel(x):  # the model's input scale: speech's log-mel power lies roughly in [-11.5, 4]
    return (log_mel(x) + 5.0) / 5.0

  def sequences(batch):
    q = audio.mu_law_encode(batch["audio"], a.bits)
    start = jnp.full_like(q[:, :1], audio.silence_code(a.bits))
    kw = {}
    if "voice" in cond:
      kw["voice"] = batch[a.voice_key]
    if "mel" in cond:
      kw["mel"] = to_mel(batch["audio"])
    return {"input": jnp.concatenate([start, q[:, :-1]], axis=1), "target": q,
            "target_mask": batch["target_mask"], "cond": kw}

  keys = ("audio", "target_mask") + ((a.voice_key,) if "voice" in cond else ())
  task = lm.make_task(config, 2**a.bits, sequences=sequences, input_keys=keys, model=model,
                      z_loss=0.0)
  base_metrics, base_finalize = task.eval_fns["metrics"], task.eval_fns["finalize"]

  def metrics(variables, batch, rng):
    out = base_metrics(variables, batch, rng)
    w = batch["mask"][:, None] & batch["target_mask"]
    q = audio.mu_law_encode(batch["audio"], a.bits)
    out["codes"] = jnp.zeros(2**a.bits, jnp.float32).at[q.ravel()].add(w.ravel())
    return out

  def finalize(m):
    p = np.asarray(m.pop("codes"))
    out = base_finalize(m)
    out = {k: v for k, v in out.items() if k not in ("bits_per_char", "bits_per_token")}
    out["bits_per_sample"] = m["loss"] / math.log(2)
    p = p[p > 0] / p.sum()
    out["unigram_bits_per_sample"] = float(-(p * np.log2(p)).sum())
    return out

  prime = wavenet.receptive_field(config.model) if config.model.name == "wavenet" else 0

  def sample_audio(variables, rng, *, num_samples, voice=None, audio_BT=None, batch=1,
                   temperature=1.0):
    """Samples [batch, num_samples] in [-1, 1] after silence, as training windows begin; a
    mel-conditioned model reads the log-mel of audio_BT (resynthesis), silence-prefixed too."""
    mel = None
    if "mel" in cond:
      if audio_BT is None:
        raise ConfigError("A mel-conditioned WaveNet needs audio_BT to take the mel from.")
      mel = to_mel(jnp.pad(audio_BT, ((0, 0), (prime, 0))))
    codes = audio_sampler.generate(model, variables["params"], rng, num_samples=num_samples,
                                   batch=batch, voice=voice, mel=mel, temperature=temperature,
                                   bits=a.bits, prime=prime)
    return audio.mu_law_decode(codes, a.bits)

  fns = dict(task.eval_fns, metrics=metrics, finalize=finalize, sample_audio=sample_audio)
  fns.pop("sample_text", None)
  return dataclasses.replace(task, eval_fns=fns)


def num_voices(config, split) -> int:
  """Classes of the voice feature: the data set's label count, or the split's largest id + 1."""
  builder = sources.get_builder(config.data)
  key = config.audio_lm.voice_key
  feats = builder.info.features
  n = getattr(feats[key], "num_classes", None) if key in feats else None
  return int(n) if n else int(split.labels[key].max()) + 1
