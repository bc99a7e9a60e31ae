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
