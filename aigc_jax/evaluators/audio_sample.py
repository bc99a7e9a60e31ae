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

from aigc_jax import audio, writers

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
  """n speech utterances cut or padded to `length`: for voices 0..n-1 in turn where voice_key
  is set, else the first n; with their voice ids."""
  speech = split.labels.get("speech", np.ones(len(split.lengths), np.int32)).astype(bool)
  voices = int(split.labels[voice_key].max()) + 1 if voice_key else 1
  picks = []
  for k in range(n):
    ok = speech.copy()  # tones (speech=False) are no example of a voice
    if voice_key:
      ok &= split.labels[voice_key] == k % voices
    ids = np.flatnonzero(ok)
    picks.append(int(ids[(k // voices) % len(ids)]) if len(ids) else k % len(split.lengths))
  clips = np.zeros((n, length), np.float32)
  for row, i in enumerate(picks):
    x = split.utterance(i)[:length]
    clips[row, :len(x)] = x
  voices = split.labels[voice_key][picks] if voice_key else None
  return clips, voices


def spectrogram_rows(path: str, rows, labels, to_mel, titles) -> None:
  """A sheet of log-mel spectrograms: one row per list of clips, one column per clip."""
  plt = writers.pyplot()
  n = len(rows[0])
  fig, axes = plt.subplots(len(rows), n, figsize=(3 * n, 2.2 * len(rows)), squeeze=False)
  for r, (clips, label) in enumerate(zip(rows, labels)):
    mels = np.asarray(to_mel(jnp.asarray(clips)))
    for k in range(n):
      ax = axes[r, k]
      ax.imshow(mels[k].T, origin="lower", aspect="auto", cmap="magma")
      ax.set_title(f"{label}: {titles[k]}", fontsize=8)
      ax.set_xticks([])
      ax.set_yticks([])
  writers.save_figure(fig, path)


def make(name, ec, ctx):
  sample_audio = ctx.fn("sample_audio", name)
  config = ctx.config
  cond = audio.conditions(config)
  voice_key = config.audio_lm.voice_key if "voice" in cond else None

  def run(variables, step, rng):
    del rng
    split = ctx.split(ec.split)
    length = int(round(ec.seconds * split.rate))
    real, voices = real_examples(split, ec.num, length, voice_key)
    to_mel = audio.mel_fn(config, split.rate)
    fake = np.asarray(jax.device_get(sample_audio(
        variables, jax.random.PRNGKey(step), num_samples=length, batch=ec.num,
        voice=None if voices is None else jnp.asarray(voices),
        audio_BT=jnp.asarray(real) if "mel" in cond else None, temperature=ec.temperature)))
    if jax.process_index() == 0:
      stem = os.path.join(ctx.workdir, "samples", f"{name}_step_{step:06d}")
      for k, clip in enumerate(fake):
        write_wav(f"{stem}_{k}.wav", clip, split.rate)
      titles = [f"voice {v}" for v in voices] if voices is not None else [
          "from real's mel" if "mel" in cond else f"sample {k}" for k in range(ec.num)]
      spectrogram_rows(stem + ".png", [real, fake], ["real", "generated"], to_mel, titles)
    return {"rms": float(np.sqrt(np.mean(fake**2)))}

  return run
