"""Frame-prediction metrics on the device, as the video-prediction literature (OpenSTL) reports.

Frames are [..., H, W, C] in [0, 1]. Per frame: MSE and MAE summed over the frame's pixels (so a
64x64 Moving MNIST frame's MSE is in pixel units, ConvLSTM ~46 converged), SSIM as scikit-image's
`structural_similarity(data_range=1)` computes it (7x7 uniform window, sample covariance, the
window-valid interior averaged; tested against it), PSNR from the frame's mean squared error.
"""

import jax
import jax.numpy as jnp

SSIM_WINDOW, SSIM_K1, SSIM_K2 = 7, 0.01, 0.03
PSNR_MAX_DB = 100.0  # a perfect frame's PSNR is infinite; capped so means stay finite


def frame_mse(pred, true):
  """[..., H, W, C] -> [...]: squared error summed over each frame."""
  return jnp.sum(jnp.square(pred - true), axis=(-3, -2, -1))


def frame_mae(pred, true):
  return jnp.sum(jnp.abs(pred - true), axis=(-3, -2, -1))


def psnr(pred, true, data_range: float = 1.0):
  """[..., H, W, C] -> [...] dB of each frame."""
  mse = jnp.mean(jnp.square(pred - true), axis=(-3, -2, -1))
  db = 10.0 * jnp.log10(data_range**2 / jnp.maximum(mse, 1e-30))
  return jnp.minimum(db, PSNR_MAX_DB)


def _box(x):
  """Means over every valid 7x7 window of [N, H, W, C] (channels separately)."""
  n = SSIM_WINDOW
  summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, n, n, 1), (1, 1, 1, 1), "VALID")
  return summed / (n * n)


def ssim(pred, true, data_range: float = 1.0):
  """[..., H, W, C] -> [...] the mean SSIM of each frame (channels averaged)."""
  lead = pred.shape[:-3]
  x = pred.reshape((-1,) + pred.shape[-3:]).astype(jnp.float32)
  y = true.reshape((-1,) + true.shape[-3:]).astype(jnp.float32)
  mx, my = _box(x), _box(y)
  cov = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)  # sample, not population, covariance
  vx = cov * (_box(x * x) - mx * mx)
  vy = cov * (_box(y * y) - my * my)
  vxy = cov * (_box(x * y) - mx * my)
  c1, c2 = (SSIM_K1 * data_range)**2, (SSIM_K2 * data_range)**2
  s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
  return jnp.mean(s, axis=(1, 2, 3)).reshape(lead)
