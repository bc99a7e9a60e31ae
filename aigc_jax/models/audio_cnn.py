"""Who is speaking: a log-mel convolutional classifier of raw audio [B, T] in [-1, 1].

The log-mel spectrogram is computed inside the model (aigc_jax/audio.py), so the classifier
takes what generators produce; then 1-D convolutions over frames (mel bands as channels) with
layer norm, each halving time, and statistics pooling (mean and standard deviation over frames,
as x-vector speaker embeddings do) into an embedding, sown as the "features" intermediate for
Frechet distances, then the class logits.
"""

import flax.linen as nn
import jax.numpy as jnp

from aigc_jax import audio
from aigc_jax.layers.dense import Conv, Dense


class Model(nn.Module):
  num_classes: int = 5
  sample_rate: int = 8000
  n_fft: int = 256
  hop: int = 64
  n_mels: int = 40
  channels: tuple = (64, 128, 128)
  embed: int = 64

  def setup(self):
    self.convs = [Conv(c, (5,), strides=2, padding="SAME", name=f"conv{i}")
                  for i, c in enumerate(self.channels)]
    self.norms = [nn.LayerNorm(name=f"norm{i}") for i in range(len(self.channels))]
    self.embedding = Dense(self.embed, ("mlp", "embed"))
    self.head = Dense(self.num_classes, ("embed", "classes"))

  def features(self, audio_BT):
    """The speaker embedding [B, embed]."""
    x = audio.log_mel(audio_BT, self.sample_rate, self.n_fft, self.hop, self.n_mels)
    x = (x + 5.0) / 5.0  # log power of speech at this scale lies roughly in [-11, 4]
    for conv, norm in zip(self.convs, self.norms):
      x = nn.relu(norm(conv(x)))
    stats = jnp.concatenate([x.mean(axis=1), x.std(axis=1)], axis=-1)
    return nn.relu(self.embedding(stats))

  def __call__(self, audio_BT, *, train: bool = False):
    del train
    h = self.features(audio_BT)
    self.sow("intermediates", "features", h)
    return self.head(h)
