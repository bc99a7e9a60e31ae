"""Audio features in JAX, computed on the device: mu-law companding and log-mel spectrograms.

Conventions follow librosa's (the tests compare with it to 1e-4): mu-law codes are
`digitize(compressed, linspace(-1, 1, 2**bits), right=True)`, i.e. librosa's quantised codes
plus 2**(bits-1), so they index a softmax directly; the STFT is centred (zero padding of n_fft/2
each side) with a periodic Hann window; the mel filter bank is Slaney's (librosa's default),
built in numpy once per shape since neither JAX nor scipy has one.
"""

import functools

import jax.numpy as jnp
import numpy as np


def mu_law_compress(x, bits: int = 8):
  """[-1, 1] -> [-1, 1]: sign(x) log(1 + mu |x|) / log(1 + mu), mu = 2**bits - 1."""
  mu = 2.0**bits - 1
  return jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / jnp.log1p(mu)


def mu_law_encode(x, bits: int = 8):
  """Audio in [-1, 1] -> int32 codes in [0, 2**bits)."""
  edges = jnp.linspace(-1.0, 1.0, 2**bits, dtype=jnp.float32)
  y = mu_law_compress(jnp.clip(x.astype(jnp.float32), -1.0, 1.0), bits)
  return jnp.searchsorted(edges, y, side="left").astype(jnp.int32)


def mu_law_decode(q, bits: int = 8):
  """Codes in [0, 2**bits) -> audio in [-1, 1] (librosa's mu_expand of the quantised code)."""
  mu = 2.0**bits - 1
  y = (q.astype(jnp.float32) - 2.0**(bits - 1)) * 2.0 / (mu + 1)
  return jnp.sign(y) / mu * jnp.expm1(jnp.abs(y) * jnp.log1p(mu))


def silence_code(bits: int = 8) -> int:
  """The code of a zero sample: what precedes an utterance."""
  return 2**(bits - 1)


def _hz_to_mel(f):
  """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
  f = np.asarray(f, np.float64)
  min_log_hz, step = 1000.0, 200.0 / 3
  logstep = np.log(6.4) / 27.0
  return np.where(f >= min_log_hz, min_log_hz / step + np.log(np.maximum(f, 1e-10) / min_log_hz)
                  / logstep, f / step)


def _mel_to_hz(m):
  m = np.asarray(m, np.float64)
  min_log_hz, step = 1000.0, 200.0 / 3
  min_log_mel, logstep = min_log_hz / step, np.log(6.4) / 27.0
  return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), step * m)


@functools.cache
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float = 0.0) -> np.ndarray:
  """[n_fft // 2 + 1, n_mels] triangular filters on the mel scale, area-normalised (Slaney)."""
  fmax = fmax or sample_rate / 2.0
  freqs = np.linspace(0, sample_rate / 2.0, n_fft // 2 + 1)
  hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
  widths = np.diff(hz)
  ramps = hz[:, None] - freqs[None, :]
  lower = -ramps[:-2] / widths[:-1, None]
  upper = ramps[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(lower, upper))
  weights *= (2.0 / (hz[2:n_mels + 2] - hz[:n_mels]))[:, None]
  return weights.T.astype(np.float32)


def stft(x_BT, n_fft: int, hop: int):
  """Centred STFT with a periodic Hann window: [B, T] -> complex [B, 1 + T // hop, n_fft//2 + 1]."""
  pad = n_fft // 2
  x = jnp.pad(x_BT.astype(jnp.float32), ((0, 0), (pad, pad)))
  frames = 1 + (x.shape[1] - n_fft) // hop
  idx = np.arange(frames)[:, None] * hop + np.arange(n_fft)[None, :]
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
  return jnp.fft.rfft(x[:, idx] * window.astype(np.float32)[None, None], axis=-1)


def mel_spectrogram(x_BT, sample_rate: int, n_fft: int, hop: int, n_mels: int,
                    fmin: float = 0.0, fmax: float = 0.0):
  """Power mel spectrogram [B, frames, n_mels] (librosa.feature.melspectrogram's layout, transposed)."""
  power = jnp.abs(stft(x_BT, n_fft, hop))**2
  return power @ mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)


def log_mel(x_BT, sample_rate: int, n_fft: int, hop: int, n_mels: int, fmin: float = 0.0,
            fmax: float = 0.0, floor: float = 1e-5):
  """Natural log of the mel power, floored (silence would be -inf)."""
  return jnp.log(jnp.maximum(mel_spectrogram(x_BT, sample_rate, n_fft, hop, n_mels, fmin, fmax),
                             floor))
