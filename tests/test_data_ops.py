import numpy as np
import pytest

from aigc_jax.data import ops
from aigc_jax.errors import ConfigError


def test_pipeline_of_ops():
  fn = ops.parse("value_range(-1, 1)|rename(image='input')|keep('input', 'label')")
  out = fn({"image": np.array([0, 255, 51], np.uint8), "label": 3, "extra": 1})
  assert sorted(out) == ["input", "label"]
  np.testing.assert_allclose(out["input"], [-1.0, 1.0, -0.6], rtol=1e-6)
  assert out["input"].dtype == np.float32


def test_empty_spec_is_identity():
  assert ops.parse("")({"a": 1}) == {"a": 1}


@pytest.mark.parametrize("spec,match", [
    ("value_range(0, 1)|blur(3)", r"Unknown preprocessing op 'blur'.*valid ops: .*value_range"),
    ("value_range(lo=0, bogus=1)", "Bad arguments"),
    ("rename(image=input)", "must be literals"),
    ("value_range(0, 1", "Cannot parse"),
])
def test_bad_ops_fail_at_parse_time(spec, match):
  with pytest.raises(ConfigError, match=match):
    ops.parse(spec)


def test_missing_feature_names_the_op_and_the_features():
  fn = ops.parse("value_range(0, 1, key='pixels')")
  with pytest.raises(ConfigError, match=r"needs feature 'pixels'; the example has \['image'\]"):
    fn({"image": np.zeros(3)})
