"""WaveNet (van den Oord et al. 2016): dilated causal convolutions over quantised audio.

Input: sample codes [B, T] where position t holds sample t - 1 (the task shifts), so the logits
at t predict sample t from the samples before it. Each layer is a kernel-2 dilated causal
convolution written as two dense maps, of x[t - d] and x[t], then the gated unit
tanh(f) * sigmoid(g), a 1x1 residual and a 1x1 skip path; the skips are summed into a two-layer
head. Conditioning enters every layer's gate: global (a voice embedding, `num_voices` > 0) and
local (a log-mel spectrogram [B, frames, mel_channels], each frame held for `mel_hop` samples
around its centre, `mel_channels` > 0).

`step` is the same network for one new sample, reading x[t - d] from a queue per layer (Fast
WaveNet, Paine et al. 2016): samplers/audio.py loops it, and it gives the full pass's logits.
"""

import flax.linen as nn
import jax.numpy as jnp

from aigc_jax.errors import ConfigError
from aigc_jax.layers.dense import Dense


def dilations(layers_per_stack: int, stacks: int) -> tuple[int, ...]:
  return tuple(2**i for i in range(layers_per_stack)) * stacks


def receptive_field(model_config) -> int:
  """Input positions the last output reads: 1 + the sum of dilations (kernel 2)."""
  return 1 + sum(dilations(model_config.layers_per_stack, model_config.stacks))


def mel_index(T: int, hop: int):
  """The mel frame each of T samples reads: the frame centred nearest to it (centred STFT)."""
  return (jnp.arange(T) + hop // 2) // hop


class Model(nn.Module):
  vocab_size: int = 256  # quantisation levels (mu-law codes)
  channels: int = 64  # residual channels
  skip_channels: int = 128
  layers_per_stack: int = 10  # dilations 1, 2, ..., 2**(layers_per_stack - 1), repeated
  stacks: int = 2
  num_voices: int = 0  # > 0: global conditioning on `voice` ids
  mel_channels: int = 0  # > 0: local conditioning on a log-mel spectrogram
  mel_hop: int = 0  # samples per mel frame

  def setup(self):
    if self.mel_channels and self.mel_hop <= 0:
      raise ConfigError("model.mel_channels > 0 needs model.mel_hop (samples per mel frame).")
    C, L = self.channels, len(self.dilations)
    self.embed = nn.Embed(self.vocab_size, C)
    self.past = [Dense(2 * C, ("embed", "mlp"), name=f"past{i}") for i in range(L)]
    self.cur = [Dense(2 * C, ("embed", "mlp"), name=f"cur{i}") for i in range(L)]
    self.res = [Dense(C, ("mlp", "embed"), name=f"res{i}") for i in range(L - 1)]
    self.skip = [Dense(self.skip_channels, ("mlp", "embed"), name=f"skip{i}") for i in range(L)]
    # Conditioning enters every gate through zero-initialised maps: it starts as a no-op, so a
    # conditioned model begins as the unconditional one and learns what the condition adds.
    zero = nn.initializers.zeros_init()
    if self.num_voices:
      self.voice_embed = nn.Embed(self.num_voices, C)
      self.voice_proj = [nn.Dense(2 * C, use_bias=False, kernel_init=zero, name=f"voice{i}")
                         for i in range(L)]
    if self.mel_channels:
      self.mel_proj = [nn.Dense(2 * C, use_bias=False, kernel_init=zero, name=f"mel{i}")
                       for i in range(L)]
    self.head1 = Dense(self.skip_channels, ("embed", "mlp"))
    self.head2 = Dense(self.vocab_size, ("mlp", "vocab"))

  @property
  def dilations(self) -> tuple[int, ...]:
    return dilations(self.layers_per_stack, self.stacks)

  def _check(self, voice, mel):
    if self.num_voices and voice is None:
      raise ConfigError("This WaveNet is voice-conditioned (model.num_voices > 0): pass `voice`.")
    if self.mel_channels and mel is None:
      raise ConfigError("This WaveNet is mel-conditioned (model.mel_channels > 0): pass `mel`.")

  def _cond(self, i, voice_vec, mel_feat):
    """Layer i's conditioning input to the gate, or 0."""
    c = 0.0
    if self.num_voices:
      c = c + self.voice_proj[i](voice_vec)
    if self.mel_channels:
      c = c + self.mel_proj[i](mel_feat)
    return c

  def _layer(self, i, x, x_past, cond, skips):
    z = self.past[i](x_past) + self.cur[i](x) + cond
    f, g = jnp.split(z, 2, axis=-1)
    h = jnp.tanh(f) * nn.sigmoid(g)
    skips = skips + self.skip[i](h)
    if i < len(self.res):
      x = x + self.res[i](h)
    return x, skips

  def _head(self, skips):
    return self.head2(nn.relu(self.head1(nn.relu(skips))))

  def __call__(self, codes_BT, *, train: bool = False, voice=None, mel=None,
               upsampled: bool = False):
    """Logits [B, T, V]. mel: [B, frames, mel_channels] (frame f centred on sample f * mel_hop),
    or with upsampled=True already one frame per position [B, T, mel_channels]."""
    del train
    self._check(voice, mel)
    B, T = codes_BT.shape
    x = self.embed(codes_BT)
    voice_vec = self.voice_embed(voice)[:, None, :] if self.num_voices else None
    mel_feat = None
    if self.mel_channels:
      mel_feat = mel if upsampled else mel[:, mel_index(T, self.mel_hop)]
    skips = 0.0
    for i, d in enumerate(self.dilations):
      x_past = jnp.pad(x, ((0, 0), (d, 0), (0, 0)))[:, :T]
      x, skips = self._layer(i, x, x_past, self._cond(i, voice_vec, mel_feat), skips)
    return self._head(skips)

  def queues(self, batch: int, dtype=jnp.float32) -> tuple:
    """Empty per-layer queues of past layer inputs: zeros, as the full pass's causal padding."""
    return tuple(jnp.zeros((batch, d, self.channels), dtype) for d in self.dilations)

  def step(self, code_B, queues, t, *, voice=None, mel_frame=None):
    """(logits [B, V] of sample t + 1 given code_B at position t, updated queues)."""
    self._check(voice, mel_frame)
    x = self.embed(code_B)
    voice_vec = self.voice_embed(voice) if self.num_voices else None
    skips, new = 0.0, []
    for i, (d, q) in enumerate(zip(self.dilations, queues)):
      slot = t % d  # written d steps ago: x[t - d]
      x_past = q[:, slot]
      new.append(q.at[:, slot].set(x.astype(q.dtype)))
      x, skips = self._layer(i, x, x_past, self._cond(i, voice_vec, mel_frame), skips)
    return self._head(skips), tuple(new)
