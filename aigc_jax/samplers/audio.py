"""Autoregressive audio from a WaveNet: one jitted loop over samples.

Cached (Fast WaveNet, Paine et al. 2016): each new sample costs one `Model.step`, which reads
every layer's input from `dilation` steps ago out of a queue. Naive: every sample re-reads the
receptive field of codes before it in a full pass. Sample t is drawn with `fold_in(rng, t)`,
so both paths draw the same codes from the same logits.
"""

import functools

import jax
import jax.numpy as jnp

from aigc_jax import audio
from aigc_jax.models import wavenet


def _draw(rng, t, logits_BV, temperature):
  if temperature == 0.0:
    return jnp.argmax(logits_BV, -1).astype(jnp.int32)
  return jax.random.categorical(jax.random.fold_in(rng, t), logits_BV.astype(jnp.float32)
                                / temperature).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "batch", "temperature",
                                             "use_cache", "bits"))
def generate(model, params, rng, *, num_samples: int, batch: int, voice=None, mel=None,
             temperature: float = 1.0, use_cache: bool = True, bits: int = 8):
  """Codes [batch, num_samples] drawn one sample at a time after silence. voice: [batch] ids
  (voice-conditioned models); mel: [batch, frames, mel_channels] covering num_samples."""
  start = jnp.full((batch,), audio.silence_code(bits), jnp.int32)
  variables = {"params": params}
  frames = (mel[:, wavenet.mel_index(num_samples, model.mel_hop)] if model.mel_channels
            else jnp.zeros((batch, num_samples, 0)))

  if use_cache:
    def body(carry, t):
      code, queues = carry
      logits, queues = model.apply(variables, code, queues, t, voice=voice,
                                   mel_frame=frames[:, t] if model.mel_channels else None,
                                   method=model.step)
      code = _draw(rng, t, logits, temperature)
      return (code, queues), code

    queues = model.queues(batch)
    _, codes = jax.lax.scan(body, (start, queues), jnp.arange(num_samples))
    return codes.T

  # Naive: the logits of position t from one full pass over the R inputs before it (all its
  # receptive field reads), or over the first R while t < R.
  R = min(wavenet.receptive_field(model), num_samples)

  def naive(buf, t):
    s = jnp.maximum(t + 1 - R, 0)
    window = jax.lax.dynamic_slice_in_dim(buf, s, R, axis=1)
    m = jax.lax.dynamic_slice_in_dim(frames, s, R, axis=1) if model.mel_channels else None
    logits = model.apply(variables, window, voice=voice, mel=m, upsampled=True)
    code = _draw(rng, t, jax.lax.dynamic_index_in_dim(logits, t - s, 1, keepdims=False),
                 temperature)
    return buf.at[:, t + 1].set(code, mode="drop"), code  # the last sample is no input

  buf = jnp.zeros((batch, num_samples), jnp.int32).at[:, 0].set(start)
  _, codes = jax.lax.scan(naive, buf, jnp.arange(num_samples))
  return codes.T
