"""Audio in JAX, on the device: mu-law companding, log-mel spectrograms, their inversion
(Griffin-Lim) and the distances a vocoder is scored by (log-spectral, mel-cepstral).

Conventions follow librosa's (the tests compare with it to 1e-4): mu-law codes are
`digitize(compressed, linspace(-1, 1, 2**bits), right=True)`, i.e. librosa's quantised codes
plus 2**(bits-1), so they index a softmax directly; the STFT is centred (zero padding of n_fft/2
each side) with a periodic Hann window; the mel filter bank is Slaney's (librosa's default),
built in numpy once per shape since neither JAX nor scipy has one.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from aigc_jax.errors import ConfigError


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


def istft(spec_BFK, n_fft: int, hop: int, length: int):
  """Inverse of `stft` (overlap-add of Hann-windowed frames, divided by the summed squared
  window), [B, frames, n_fft//2 + 1] -> [B, length]."""
  frames = spec_BFK.shape[1]
  window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
  x = jnp.fft.irfft(spec_BFK, n=n_fft, axis=-1) * window[None, None]
  total = n_fft + hop * (frames - 1)
  idx = (np.arange(frames)[:, None] * hop + np.arange(n_fft)[None, :]).ravel()
  y = jnp.zeros((x.shape[0], total), x.dtype).at[:, idx].add(x.reshape(x.shape[0], -1))
  norm = np.zeros(total, np.float32)
  np.add.at(norm, idx, np.tile(window**2, frames))
  y = y / np.maximum(norm, 1e-8)[None]
  pad = n_fft // 2
  y = y[:, pad:pad + length]
  return jnp.pad(y, ((0, 0), (0, length - y.shape[1])))


def mel_to_power(log_mel_BFM, sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                 fmax: float = 0.0):
  """A linear power spectrogram whose mel projection approximates exp(log_mel): the filter
  bank's pseudo-inverse, clipped at zero."""
  fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
  return jnp.maximum(jnp.exp(log_mel_BFM) @ np.linalg.pinv(fb).astype(np.float32), 0.0)


def griffin_lim(magnitude_BFK, n_fft: int, hop: int, length: int, iters: int = 32,
                momentum: float = 0.99, seed: int = 0):
  """Audio whose STFT magnitude approximates `magnitude` (Griffin and Lim 1984), with the fast
  variant's momentum (Perraudin et al. 2013), from a seeded random phase."""
  rng = np.random.default_rng(seed)
  phase = jnp.asarray(np.exp(2j * np.pi * rng.random(magnitude_BFK.shape)).astype(np.complex64))
  prev = jnp.zeros_like(phase)

  def body(_, carry):
    phase, prev = carry
    rebuilt = stft(istft(magnitude_BFK * phase, n_fft, hop, length), n_fft, hop)
    angles = rebuilt - (momentum / (1 + momentum)) * prev
    return angles / (jnp.abs(angles) + 1e-16), rebuilt

  phase, _ = jax.lax.fori_loop(0, iters, body, (phase, prev))
  return istft(magnitude_BFK * phase, n_fft, hop, length)


def log_spectral_distance(x_T, y_T, n_fft: int, hop: int, floor: float = 1e-5) -> float:
  """Mean over frames of the RMS over frequencies of the dB difference of two power spectra,
  each floored at `floor` (-50 dB, log_mel's floor: digital silence is not infinitely far)."""
  px, py = (jnp.abs(stft(jnp.asarray(v)[None], n_fft, hop))[0]**2 for v in (x_T, y_T))
  d = 10 * (jnp.log10(jnp.maximum(px, floor)) - jnp.log10(jnp.maximum(py, floor)))
  return float(jnp.mean(jnp.sqrt(jnp.mean(d**2, axis=-1))))


def mel_cepstrum(log_mel_FM, coefficients: int = 13):
  """Cepstra of the log mel amplitude (DCT-II, orthonormal), c1 .. c_coefficients (no energy)."""
  return jax.scipy.fft.dct(0.5 * log_mel_FM, type=2, norm="ortho", axis=-1)[:, 1:coefficients + 1]


def mel_cepstral_distortion(log_mel_x, log_mel_y, coefficients: int = 13) -> float:
  """MCD in dB, (10 / ln 10) sqrt(2 sum_k (c_k - c'_k)^2), averaged over frames."""
  d = mel_cepstrum(log_mel_x, coefficients) - mel_cepstrum(log_mel_y, coefficients)
  return float(jnp.mean(10 / np.log(10) * jnp.sqrt(2 * jnp.sum(d**2, axis=-1))))


# The settings audio tasks and their evaluators share (config.audio_lm), read from the config.
CONDITIONS = ("voice", "mel")


def conditions(config) -> set[str]:
  chosen = {x.strip() for x in config.audio_lm.condition.split(",") if x.strip()}
  if chosen - set(CONDITIONS):
    raise ConfigError(f"audio_lm.condition={config.audio_lm.condition!r}; valid: any of "
                      f"{', '.join(CONDITIONS)}, comma-separated, or '' (unconditional).")
  return chosen


def mel_fn(config, rate: int):
  """Samples [B, T] -> log-mel [B, frames, n_mels] with the task's settings."""
  a = config.audio_lm
  return functools.partial(log_mel, sample_rate=rate, n_fft=a.n_fft, hop=a.hop,
                           n_mels=a.n_mels, fmin=a.fmin, fmax=a.fmax)
