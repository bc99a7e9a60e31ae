import pytest

from aigc_jax.tools import sweep
from aigc_jax.errors import ConfigError
from experiments import mnist1d


def test_expand_sets_whole_sub_configs_and_scalars():
  c = mnist1d.get_config()
  runs = sweep.expand(c)
  assert len(runs) == 12
  assignment, sub = runs[4]
  assert sub.model.name == "mlp" and sub.model.residual and tuple(sub.model.hidden) == (256, 256)
  assert sub.seed == 1 and sub.sweep == ()
  assert sweep.label(assignment) == "modelmlp_seed1"


def test_unknown_sweep_key():
  c = mnist1d.get_config()
  c.sweep = (("optim.learning_rate", (1.0,)),)
  with pytest.raises(ConfigError, match="Sweep key 'optim.learning_rate'.*'lr'"):
    sweep.expand(c)


def test_aggregate_mean_and_spread_over_seeds():
  results = [({"model": {"name": "a"}, "seed": s}, {"step": 1, "acc": v})
             for s, v in enumerate([0.5, 0.7])]
  results.append(({"model": {"name": "b"}, "seed": 0}, {"step": 1, "acc": 0.9}))
  table = sweep.aggregate(results, {"a": 0.6})
  assert table["model=a"]["acc"]["mean"] == pytest.approx(0.6)
  assert table["model=a"]["acc"]["std"] == pytest.approx(0.1414, abs=1e-4)
  assert table["model=a"]["reference"] == 0.6 and "reference" not in table["model=b"]
  assert table["model=b"]["runs"] == 1
