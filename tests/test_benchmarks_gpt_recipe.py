"""benchmarks/nanogpt_eval.py's whole-split estimator (its numpy part: no torch here) on our
evaluation windows."""

import numpy as np
import pytest

from aigc_jax.data import tokens
from benchmarks import nanogpt_eval


@pytest.mark.parametrize("n,seq_len,batch_size", [(1000, 64, 5), (1 + 4 * 16, 16, 3)])
def test_whole_split_loss_counts_every_target_once(n, seq_len, batch_size):
  rng = np.random.default_rng(0)
  stream = rng.integers(0, 7, n).astype(np.uint16)
  logp = np.log(rng.dirichlet(np.ones(7), 7))  # a bigram model: row = previous token

  def token_losses(x, y):
    return -logp[x, y]

  split = tokens.TokenSplit(stream, seq_len, "packed", pad_last=True)
  w = split.load(np.arange(len(split)))
  loss = nanogpt_eval.whole_split_loss(token_losses, w["input"], w["target"], w["target_mask"],
                                       batch_size)
  # The per-character mean: every token after the first is a target, with its predecessor.
  assert loss == pytest.approx(np.mean(-logp[stream[:-1], stream[1:]]), rel=1e-12)
  assert w["target_mask"].sum() == n - 1
