import numpy as np
import pytest

from aigc_jax.data import pipeline, splits
from aigc_jax.data import tokens
from aigc_jax.errors import ConfigError


def _split(n=50):
  return splits.Records(columns={"x": np.arange(n), "y": np.arange(n) * 10}, source=None,
                        fn=None)


def _take(it, k):
  return [next(it)["x"] for _ in range(k)]


def test_each_epoch_is_a_new_permutation():
  it = pipeline.train_iterator(_split(), global_batch=10, seed=0, process_index=0,
                               process_count=1, prefetch=0)
  e1, e2 = np.concatenate(_take(it, 5)), np.concatenate(_take(it, 5))
  assert sorted(e1) == sorted(e2) == list(range(50))
  assert not np.array_equal(e1, e2)


def test_resume_mid_epoch_replays_the_same_batches():
  kw = dict(global_batch=8, seed=3, process_index=0, process_count=1)
  full = pipeline.train_iterator(_split(), prefetch=2, **kw)
  expected = _take(full, 20)
  first = pipeline.train_iterator(_split(), prefetch=2, **kw)
  _take(first, 7)
  state = first.get_state()
  resumed = pipeline.train_iterator(_split(), prefetch=2, **kw)
  resumed.set_state(state)
  np.testing.assert_array_equal(np.stack(_take(resumed, 13)), np.stack(expected[7:]))


def test_two_processes_split_each_global_batch():
  kw = dict(global_batch=10, seed=1, process_count=2, prefetch=0)
  p0 = pipeline.train_iterator(_split(), process_index=0, **kw)
  p1 = pipeline.train_iterator(_split(), process_index=1, **kw)
  single = pipeline.train_iterator(_split(), global_batch=10, seed=1, process_index=0,
                                   process_count=1, prefetch=0)
  seen = []
  for _ in range(5):  # one epoch
    a, b, whole = next(p0), next(p1), next(single)
    assert len(a["x"]) == len(b["x"]) == 5 and not set(a["x"]) & set(b["x"])
    # Together the hosts train on exactly the single-host batch: results do not depend on hosts.
    np.testing.assert_array_equal(np.concatenate([a["x"], b["x"]]), whole["x"])
    np.testing.assert_array_equal(a["y"], a["x"] * 10)
    seen.extend(a["x"]), seen.extend(b["x"])
  assert sorted(seen) == list(range(50))


def test_eval_batches_pad_and_mask_across_hosts():
  split = _split(23)
  got = []
  counts = []
  for p in range(2):
    batches = list(pipeline.eval_batches(split, local_batch=4, process_index=p, process_count=2))
    counts.append(len(batches))
    for b in batches:
      assert b["x"].shape == (4,)
      got.extend(b["x"][b["mask"]])
  assert counts[0] == counts[1] == 3
  assert sorted(got) == list(range(23))


def test_batch_larger_than_split():
  with pytest.raises(ConfigError, match="fewer than the global batch"):
    pipeline.train_iterator(_split(5), global_batch=8, seed=0, process_index=0, process_count=1)


@pytest.mark.parametrize("make", [
    lambda: _split(48),
    lambda: tokens.TokenSplit(np.arange(48 * 4 + 1), seq_len=4, packing="packed"),
], ids=["columns", "packed_tokens"])
def test_two_processes_resume_mid_epoch_exactly(make):
  """Each simulated process resumes from its own saved state and replays exactly its own batches;
  together the processes see every example once per epoch."""
  key = "x" if isinstance(make(), splits.Records) else "input"
  kw = dict(global_batch=8, seed=5, process_count=2, prefetch=2)
  first_ids = lambda b: b[key] if key == "x" else b[key][:, 0] // 4  # noqa: E731
  for p in range(2):
    full = pipeline.train_iterator(make(), process_index=p, **kw)
    expected = [first_ids(next(full)) for _ in range(15)]
    run = pipeline.train_iterator(make(), process_index=p, **kw)
    got = [first_ids(next(run)) for _ in range(4)]
    state = run.get_state()
    del run  # the "crash"
    resumed = pipeline.train_iterator(make(), process_index=p, **kw)
    resumed.set_state(state)
    got += [first_ids(next(resumed)) for _ in range(11)]
    np.testing.assert_array_equal(np.stack(got), np.stack(expected))
  its = [pipeline.train_iterator(make(), process_index=p, **kw) for p in range(2)]
  seen = np.concatenate([first_ids(next(it)) for _ in range(6) for it in its])  # one epoch
  assert sorted(seen.tolist()) == list(range(48))
