"""Resynthesis of held-out utterances from their log-mel spectrograms, scored against the
originals, beside Griffin-Lim from the same spectrograms (the baseline, computed here).

`num` speech utterances of the split, taken from the voices in turn and cut to `max_seconds`,
are resynthesised by the task's mel-conditioned sampler (`sample_audio` with audio_BT) and by
Griffin-Lim (the mel filter bank's pseudo-inverse, then `gl_iters` iterations) from the
task's own log-mel settings. Reported, as means over the utterances: log-spectral distance (dB)
and mel-cepstral distortion (dB, 13 coefficients) of each against the original, named
`lsd_db` / `mcd_db` and `gl_lsd_db` / `gl_mcd_db`. WAVs and a spectrogram sheet (original,
resynthesis, Griffin-Lim) go to DIR/samples/NAME_step_N*.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import audio
from aigc_jax.errors import ConfigError
from aigc_jax.evaluators.audio_sample import spectrogram_rows, write_wav

DEFAULTS = {"num": 8, "max_seconds": 2.0, "gl_iters": 32, "temperature": 1.0}


def check(name, ec, config):
  if "mel" not in audio.conditions(config):
    raise ConfigError(f"Evaluator {name!r} resynthesises from spectrograms: it needs a "
                      "mel-conditioned model (audio_lm.condition containing 'mel').")


def pick(split, num: int, voice_key: str) -> list[int]:
  """Utterances from each voice in turn (speech only where flagged), in split order."""
  ok = split.labels["speech"].astype(bool) if "speech" in split.labels else np.ones(
      len(split.lengths), bool)
  voices = split.labels.get(voice_key, np.zeros(len(split.lengths), np.int32))
  queues = [list(np.flatnonzero(ok & (voices == v))) for v in np.unique(voices)]
  out = []
  while len(out) < num and any(queues):
    for q in queues:
      if q and len(out) < num:
        out.append(int(q.pop(0)))
  return out


def make(name, ec, ctx):
  sample_audio = ctx.fn("sample_audio", name)
  config = ctx.config
  a = config.audio_lm

  def run(variables, step, rng):
    del rng
    split = ctx.split(ec.split)
    ids = pick(split, ec.num, a.voice_key)
    cap = int(ec.max_seconds * split.rate)
    clips = [split.utterance(i)[:cap] for i in ids]
    length = max(map(len, clips))
    real = np.zeros((len(ids), length), np.float32)
    for row, x in enumerate(clips):
      real[row, :len(x)] = x
    voice = jnp.asarray(split.labels[a.voice_key][ids]) if a.voice_key in split.labels else None
    ours = np.asarray(jax.device_get(sample_audio(
        variables, jax.random.PRNGKey(step), num_samples=length, batch=len(ids), voice=voice,
        audio_BT=jnp.asarray(real), temperature=ec.temperature)))
    to_mel = audio.mel_fn(config, split.rate)
    log_mel = to_mel(jnp.asarray(real))
    magnitude = jnp.sqrt(audio.mel_to_power(log_mel, split.rate, a.n_fft, a.n_mels, a.fmin,
                                            a.fmax))
    gl = np.asarray(jax.jit(audio.griffin_lim, static_argnums=(1, 2, 3, 4))(
        magnitude, a.n_fft, a.hop, length, ec.gl_iters))
    scores = {k: [] for k in ("lsd_db", "mcd_db", "gl_lsd_db", "gl_mcd_db")}
    for row, x in enumerate(clips):
      n = len(x)
      ref_mel = to_mel(jnp.asarray(x)[None])[0]
      for prefix, y in (("", ours[row, :n]), ("gl_", gl[row, :n])):
        scores[prefix + "lsd_db"].append(audio.log_spectral_distance(x, y, a.n_fft, a.hop))
        scores[prefix + "mcd_db"].append(audio.mel_cepstral_distortion(
            ref_mel, to_mel(jnp.asarray(y)[None])[0]))
    if jax.process_index() == 0:
      stem = os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}")
      for row, x in enumerate(clips):
        n = len(x)
        for tag, y in (("real", x), ("wavenet", ours[row, :n]), ("griffin_lim", gl[row, :n])):
          write_wav(f"{stem}_{row}_{tag}.wav", y, split.rate)
      show = min(4, len(ids))
      spectrogram_rows(stem + ".png", [real[:show], ours[:show], gl[:show]],
                       ["original", "WaveNet from mel", "Griffin-Lim from mel"], to_mel,
                       [f"utterance {i}" for i in ids[:show]])
    return {k: float(np.mean(v)) for k, v in scores.items()}

  return run
