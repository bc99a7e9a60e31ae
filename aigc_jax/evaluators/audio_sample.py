"""Generated audio per evaluation: WAV files and a spectrogram sheet, real beside generated.

`num` clips of `seconds` each, drawn with the task's `sample_audio` (the cached sampler): a
voice-conditioned model is asked for voices 0, 1, ... in turn, a mel-conditioned one for the
spectrograms of the split's first utterances (resynthesis). Files go to DIR/samples/:
NAME_step_N_K.wav and NAME_step_N.png (log-mel of each generated clip, under the real
utterance of the same voice or spectrogram).
"""

import os
import wave

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax import writers
from aigc_jax.tasks import audio_lm

DEFAULTS = {"num": 4, "seconds": 1.0, "temperature": 1.0}


def write_wav(path: str, x, rate: int) -> None:
  """Float samples in [-1, 1] as 16-bit mono PCM (the standard library's wave module)."""
  pcm = np.clip(np.round(np.asarray(x, np.float64) * 32767), -32768, 32767).astype("<i2")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  with wave.open(tmp, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(pcm.tobytes())
  os.replace(tmp, path)


def real_examples(split, n: int, length: int, voice_key: str | None):
  """n utterances cut or padded to `length`: for voices 0..n-1 in turn where voice_key is set,
  else the first n; with their voice ids."""
  picks = []
  for k in range(n):
    if voice_key:
      ids = np.flatnonzero(split.labels[voice_key] == k % (split.labels[voice_key].max() + 1))
      i = int(ids[0]) if len(ids) else k
    else:
      i = k % len(split.lengths)
    picks.append(i)
  clips = np.zeros((n, length), np.float32)
  for row, i in enumerate(picks):
    x = split.utterance(i)[:length]
    clips[row, :len(x)] = x
  voices = split.labels[voice_key][picks] if voice_key else None
  return clips, voices


def spectrogram_sheet(path: str, real, fake, to_mel, titles) -> None:
  plt = writers.pyplot()
  n = len(fake)
  fig, axes = plt.subplots(2, n, figsize=(3 * n, 4.5), squeeze=False)
  for row, clips, label in ((0, real, "real"), (1, fake, "generated")):
    mels = np.asarray(to_mel(jnp.asarray(clips)))
    for k in range(n):
      ax = axes[row, k]
      ax.imshow(mels[k].T, origin="lower", aspect="auto", cmap="magma")
      ax.set_title(f"{label}: {titles[k]}", fontsize=8)
      ax.set_xticks([])
      ax.set_yticks([])
  writers.save_figure(fig, path)


def make(name, ec, ctx):
  sample_audio = ctx.fn("sample_audio", name)
  config = ctx.config
  cond = audio_lm.conditions(config)
  voice_key = config.audio_lm.voice_key if "voice" in cond else None

  def run(variables, step, rng):
    del rng
    split = ctx.split(ec.split)
    length = int(round(ec.seconds * split.rate))
    real, voices = real_examples(split, ec.num, length, voice_key)
    to_mel = audio_lm.mel_fn(config, split.rate)
    mel = to_mel(jnp.asarray(real)) if "mel" in cond else None
    fake = np.asarray(jax.device_get(sample_audio(
        variables, jax.random.PRNGKey(step), num_samples=length, batch=ec.num,
        voice=None if voices is None else jnp.asarray(voices), mel=mel,
        temperature=ec.temperature)))
    if jax.process_index() == 0:
      stem = os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}")
      for k, clip in enumerate(fake):
        write_wav(f"{stem}_{k}.wav", clip, split.rate)
      titles = [f"voice {v}" for v in voices] if voices is not None else [
          "mel of real" if mel is not None else f"sample {k}" for k in range(ec.num)]
      spectrogram_sheet(stem + ".png", real, fake, to_mel, titles)
    return {"rms": float(np.sqrt(np.mean(fake**2)))}

  return run
