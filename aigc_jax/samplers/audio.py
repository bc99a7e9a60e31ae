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
                                             "use_cache", "bits", "prime"))
def generate(model, params, rng, *, num_samples: int, batch: int, voice=None, mel=None,
             temperature: float = 1.0, use_cache: bool = True, bits: int = 8, prime: int = 0):
  """Codes [batch, num_samples] drawn one sample at a time after `prime` samples of silence
  (as training windows begin: prime = the receptive field makes the first sample see silence
  wherever it looks). voice: [batch] ids; mel: [batch, frames, mel_channels] covering
  prime + num_samples samples. Drawn sample t uses `fold_in(rng, t)`."""
  total = prime + num_samples
  silence = jnp.full((batch,), audio.silence_code(bits), jnp.int32)
  variables = {"params": params}
  frames = mel[:, wavenet.mel_index(total, model.mel_hop)] if model.mel_channels else None

  def pick(s, logits):
    """The code at position s: drawn after the prime, silence within it."""
    drawn = _draw(rng, s - prime, logits, temperature)
    return jnp.where(s >= prime, drawn, silence)

  if use_cache:
    def body(carry, s):
      code, queues = carry
      logits, queues = model.apply(variables, code, queues, s, voice=voice,
                                   mel_frame=frames[:, s] if model.mel_channels else None,
                                   method=model.step)
      code = pick(s, logits)
      return (code, queues), code

    _, codes = jax.lax.scan(body, (silence, model.queues(batch)), jnp.arange(total))
    return codes.T[:, prime:]

  # Naive: the logits of position s from one full pass over the R inputs up to it (all its
  # receptive field reads), or over the first R while s < R.
  R = min(wavenet.receptive_field(model), total)

  def naive(buf, s):
    start = jnp.maximum(s + 1 - R, 0)
    window = jax.lax.dynamic_slice_in_dim(buf, start, R, axis=1)
    m = jax.lax.dynamic_slice_in_dim(frames, start, R, axis=1) if model.mel_channels else None
    logits = model.apply(variables, window, voice=voice, mel=m, upsampled=True)
    code = pick(s, jax.lax.dynamic_index_in_dim(logits, s - start, 1, keepdims=False))
    return buf.at[:, s + 1].set(code, mode="drop"), code  # the last code is no input

  buf = jnp.zeros((batch, total), jnp.int32).at[:, 0].set(silence)
  _, codes = jax.lax.scan(naive, buf, jnp.arange(total))
  return codes.T[:, prime:]
