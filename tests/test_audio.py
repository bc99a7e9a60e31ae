"""Audio features in JAX against librosa, the reference implementation, on real speech."""

import os

import jax.numpy as jnp
import librosa
import numpy as np
import pytest
import soundfile

from aigc_jax import audio


@pytest.fixture(scope="module")
def speech(data_dir):
  path = os.path.join(data_dir, "asterisk_sounds", "en_US_f_Allison", "auth-thankyou.wav")
  x, rate = soundfile.read(path, dtype="float32")
  assert rate == 8000 and len(x) > 4000
  return x


@pytest.mark.parametrize("bits", [8, 4])
def test_mu_law_matches_librosa(speech, bits):
  mu = 2**bits - 1
  x = np.concatenate([speech, [-1.0, 0.999, 0.0, 1e-9, -1e-9]]).astype(np.float32)
  codes = np.asarray(audio.mu_law_encode(jnp.asarray(x), bits))
  ref = librosa.mu_compress(x, mu=mu, quantize=True) + 2**(bits - 1)
  np.testing.assert_array_equal(codes, ref)
  # Full scale: librosa's code for +1.0 is one past its range (2**(bits-1)); ours is the top code.
  assert audio.mu_law_encode(jnp.asarray([1.0, 2.0, -3.0]), bits).tolist() == [mu, mu, 0]
  np.testing.assert_allclose(np.asarray(audio.mu_law_compress(jnp.asarray(x), bits)),
                             librosa.mu_compress(x, mu=mu, quantize=False), atol=1e-6)
  np.testing.assert_allclose(np.asarray(audio.mu_law_decode(jnp.asarray(codes), bits)),
                             librosa.mu_expand(ref - 2**(bits - 1), mu=mu, quantize=True),
                             atol=1e-6)
  assert audio.mu_law_encode(jnp.zeros(1), bits)[0] == audio.silence_code(bits)


@pytest.mark.parametrize("n_fft,hop,n_mels,fmin,fmax", [(256, 64, 40, 0.0, 0.0),
                                                        (512, 128, 80, 50.0, 3800.0)])
def test_log_mel_matches_librosa(speech, n_fft, hop, n_mels, fmin, fmax):
  np.testing.assert_allclose(
      audio.mel_filterbank(8000, n_fft, n_mels, fmin, fmax),
      librosa.filters.mel(sr=8000, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                          fmax=fmax or None).T, atol=1e-7)
  batch = np.stack([speech, speech[::-1]])
  ours = np.asarray(audio.log_mel(jnp.asarray(batch), 8000, n_fft, hop, n_mels, fmin, fmax))
  for row, x in zip(ours, batch):
    ref = librosa.feature.melspectrogram(y=x, sr=8000, n_fft=n_fft, hop_length=hop,
                                         n_mels=n_mels, fmin=fmin, fmax=fmax or None,
                                         pad_mode="constant", power=2.0).T
    assert row.shape == ref.shape
    np.testing.assert_allclose(row, np.log(np.maximum(ref, 1e-5)), atol=1e-4)


def test_istft_inverts_stft_and_griffin_lim_matches_librosa(speech):
  x = jnp.asarray(speech[None, :4000])
  spec = audio.stft(x, 256, 64)
  np.testing.assert_allclose(np.asarray(audio.istft(spec, 256, 64, 4000)), x, atol=1e-5)
  magnitude = jnp.abs(spec)

  def convergence(y):  # ||S(y)| - target| / ||target||: 0 for a perfect phase retrieval
    s = np.abs(np.asarray(audio.stft(jnp.asarray(y).reshape(1, -1), 256, 64)))
    return np.linalg.norm(s - np.asarray(magnitude)) / np.linalg.norm(np.asarray(magnitude))

  ours = np.asarray(audio.griffin_lim(magnitude, 256, 64, 4000, iters=32))[0]
  ref = librosa.griffinlim(np.asarray(magnitude[0]).T, n_iter=32, hop_length=64, n_fft=256,
                           length=4000, init="random", rng=np.random.default_rng(0))
  random_phase = np.asarray(audio.griffin_lim(magnitude, 256, 64, 4000, iters=0))[0]
  assert convergence(ours) < 0.5 * convergence(random_phase)
  assert convergence(ours) < 1.1 * convergence(ref)  # as good as librosa's, same iterations


def test_distances_on_known_cases(speech):
  x = speech[:4000]
  assert audio.log_spectral_distance(x, x, 256, 64) == 0.0
  # Twice the amplitude is four times the power: 10 log10 4 dB in every bin that is not floored.
  assert audio.log_spectral_distance(x, 2 * x, 256, 64, floor=1e-20) == pytest.approx(
      10 * np.log10(4), rel=1e-3)
  lm = audio.log_mel(jnp.asarray(x[None]), 8000, 256, 64, 40)[0]
  assert audio.mel_cepstral_distortion(lm, lm) == 0.0
  # A gain is a constant in the log mel: the energy term c0 only, which MCD leaves out.
  assert audio.mel_cepstral_distortion(lm, lm + np.log(4.0)) == pytest.approx(0.0, abs=1e-4)
  noisy = audio.log_mel(jnp.asarray(x[None] + 0.05 * np.random.default_rng(0).normal(
      size=(1, 4000)).astype(np.float32)), 8000, 256, 64, 40)[0]
  assert audio.mel_cepstral_distortion(lm, noisy) > 1.0
