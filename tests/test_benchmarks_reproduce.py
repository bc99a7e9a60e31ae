"""benchmarks/reproduce.py: the published figures, the docs that quote them, and the re-check."""

import importlib
import json
import os
import pkgutil

import pytest

import experiments
from benchmarks import reproduce


def _figure(value, tolerance, fmt="{:.1%}", unit="fraction"):
  return {"value": value, "tolerance": tolerance, "unit": unit, "format": fmt, "rule": "test"}


def test_the_docs_quote_every_published_figure():
  assert reproduce.check_docs(reproduce.load()) == []


def test_check_docs_names_a_value_or_wall_time_the_docs_do_not_quote(tmp_path):
  (tmp_path / "doc.md").write_text("accuracy 97.6% (197.4% elsewhere) in 4 min\n14 s\n")
  entry = {"docs": ["doc.md"], "wall_s": 254, "figures": {"acc": _figure(0.976, 0.01)}}
  published = {"experiments": {"toy:quick": entry}}
  assert reproduce.check_docs(published, str(tmp_path)) == []  # wrapped across lines
  entry["figures"]["acc"]["value"] = 0.974  # "97.4%" occurs only inside "197.4%"
  entry["wall_s"] = 255
  assert reproduce.check_docs(published, str(tmp_path)) == [
      "toy:quick acc: '97.4%' is not in doc.md", "toy:quick wall: 255 s is not in doc.md"]


def test_every_experiment_with_a_quick_variant_has_a_well_formed_entry():
  entries = reproduce.load()["experiments"]
  modules = {}
  for info in pkgutil.iter_modules(experiments.__path__):
    modules[info.name] = module = importlib.import_module(f"experiments.{info.name}")
    try:  # a table (no get_config) takes --variant=quick
      module.get_config("quick") if hasattr(module, "get_config") else None
    except ValueError:
      continue
    assert f"{info.name}:quick" in entries, info.name
  for name, entry in entries.items():
    exp, _, variant = name.partition(":")
    assert entry["set"] in ("quick", "full") and "overrides" not in entry, name
    if entry.get("runner", "main") == "main":  # the variant exists
      modules[exp].get_config(None if variant == "default" else variant)
    else:
      assert entry["runner"] == "table" and variant in ("quick", "default"), name
    for doc in entry["docs"] + entry.get("wall_docs", []):
      assert os.path.exists(os.path.join(reproduce.REPO, doc)), (name, doc)
    for key, fig in entry["figures"].items():
      assert fig["tolerance"] > 0 and fig["unit"] and fig["rule"], (name, key)
      reproduce.show(0.5 if fig["value"] is None else fig["value"], fig)
    if any(f["value"] is not None for f in entry["figures"].values()):
      assert entry["measured_with"] is not None, name
    for env in (entry["measured_with"], entry.get("wall_measured_with")):
      assert env is None or set(env) == set(reproduce.ENV_KEYS + ("date",)), name


def test_lookup_reads_nested_and_dotted_keys():
  summary = {"a": 1, "table": {"lr=0.001": {"acc": {"mean": 0.5}}}, "b": {"c": "text"}}
  assert reproduce.lookup(summary, "a") == 1.0
  assert reproduce.lookup(summary, "table.lr=0.001.acc.mean") == 0.5
  for missing in ("table.lr=0.001", "b.c", "x"):
    with pytest.raises(KeyError):
      reproduce.lookup(summary, missing)


def test_commands_of_a_config_and_of_a_table():
  assert reproduce.command("cnn_mnist:quick", {}, "W")[1:] == [
      "-m", "aigc_jax.main", "--config=experiments/cnn_mnist.py:quick", "--workdir=W",
      "--config.train.progress_bar=False"]
  assert reproduce.command("cnn_mnist:default", {"overrides": ["--x=1"]}, "W")[3:] == [
      "--config=experiments/cnn_mnist.py", "--workdir=W", "--config.train.progress_bar=False",
      "--x=1"]
  assert reproduce.command("transfer_mnist:quick", {"runner": "table"}, "W")[1:] == [
      "-m", "experiments.transfer_mnist", "--workdir=W", "--variant=quick"]


@pytest.fixture
def toy(tmp_path, monkeypatch):
  """A published file of a toy experiment, and a runner that writes the summary it is given."""
  env = dict(reproduce.environment(), jax="0.0.1")
  entry = {"set": "quick", "docs": [], "wall_s": 10.0, "measured_with": env,
           "figures": {"acc": _figure(0.9, 0.01),
                       "table.all.loss.mean": _figure(1.5, 0.05, "{:.3f}", "nats")}}
  published = {"experiments": {"toy:quick": entry,
                               "toy:default": {**entry, "set": "full", "wall_s": None}}}
  path = tmp_path / "published.json"
  path.write_text(json.dumps(published))
  state = {"summary": {"acc": 0.905, "table": {"all": {"loss": {"mean": 1.48}}}}, "rc": 0,
           "calls": []}

  def run_process(cmd, log_path):
    workdir = next(a.split("=", 1)[1] for a in cmd if a.startswith("--workdir="))
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(state["summary"], f)
    with open(log_path, "w") as f:
      f.write("toy log\n")
    state["calls"].append(cmd)
    return state["rc"], 12.0

  monkeypatch.setattr(reproduce, "run_process", run_process)
  state["run"] = lambda *a: reproduce.main([f"--published={path}",
                                            f"--workdir={tmp_path / 'w'}", *a])
  state["path"] = path
  return state


def test_within_tolerance_passes_reports_and_resumes(toy, capsys):
  assert toy["run"]() == 0
  assert len(toy["calls"]) == 1 and "--config=experiments/toy.py:quick" in toy["calls"][0]
  out = capsys.readouterr().out
  assert "toy:quick: environment differs from the published run's: jax 0.0.1 -> " in out
  md = open(toy["path"].parent / "w" / "reproduce.md").read()
  assert "| toy:quick | acc | 90.0% | 90.5% | +0.50 pt | 1.00 pt | yes |" in md
  assert "| toy:quick | table.all.loss.mean | 1.500 | 1.480 | -0.02 | 0.05 | yes |" in md
  assert "| toy:quick | wall | 10.0 s | 12.0 s | +20% | - | not judged |" in md
  rows = json.load(open(toy["path"].parent / "w" / "reproduce.json"))["rows"]
  assert [r["status"] for r in rows] == ["yes", "yes", "not judged"]
  assert toy["run"]() == 0 and len(toy["calls"]) == 1  # finished before: read, not rerun
  assert toy["run"]("--fresh") == 0 and len(toy["calls"]) == 2


@pytest.mark.parametrize("summary, rc, status", [
    ({"acc": 0.88, "table": {"all": {"loss": {"mean": 1.5}}}}, 0, "NO"),
    ({"table": {"all": {"loss": {"mean": 1.5}}}}, 0, "missing"),
    ({}, 1, "failed")])
def test_drift_missing_figure_or_failed_run_exits_1(toy, summary, rc, status):
  toy["summary"], toy["rc"] = summary, rc
  assert toy["run"]() == 1
  rows = json.load(open(toy["path"].parent / "w" / "reproduce.json"))["rows"]
  assert rows[0]["status"] == status


def test_update_writes_values_wall_and_environment(toy):
  toy["summary"]["acc"] = 0.95  # a deliberate change
  assert toy["run"]("--update") == 0
  entry = json.loads(toy["path"].read_text())["experiments"]["toy:quick"]
  assert entry["figures"]["acc"]["value"] == 0.95 and entry["figures"]["acc"]["tolerance"] == 0.01
  assert entry["wall_s"] == 12.0 and entry["measured_with"]["jax"] != "0.0.1"
  assert toy["run"]() == 0  # the next check passes against what was written


def test_a_killed_run_resumes_and_keeps_the_published_wall_time(toy):
  os.makedirs(toy["path"].parent / "w" / "runs" / "toy_quick")  # killed before it finished
  assert toy["run"]("--update") == 0
  rows = json.load(open(toy["path"].parent / "w" / "reproduce.json"))["rows"]
  assert rows[-1]["status"] == "partial run"  # its wall time is a remainder
  entry = json.loads(toy["path"].read_text())["experiments"]["toy:quick"]
  assert entry["wall_s"] == 10.0 and entry["wall_measured_with"]["jax"] == "0.0.1"


def test_selection_by_set_and_only(toy):
  published = reproduce.load(str(toy["path"]))
  assert reproduce.select(published, False, "") == ["toy:quick"]
  assert reproduce.select(published, True, "toy") == ["toy:quick", "toy:default"]
  assert reproduce.select(published, False, "toy:default") == ["toy:default"]
  with pytest.raises(SystemExit, match="unknown"):
    reproduce.select(published, False, "toy:slow")


def test_a_real_tiny_run_through_the_subprocess(data_dir, tfds_dir, tmp_path, monkeypatch):
  """cnn_mnist:quick shortened to 2 steps: the command, the wall time and the summary read."""
  monkeypatch.setenv("AIGC_JAX_DATA", data_dir)
  entry = {"set": "quick", "docs": [], "wall_s": None, "measured_with": None,
           "overrides": [f"--config.data.tfds_dir={tfds_dir}", "--config.train.num_steps=2",
                         "--config.train.eval_every_steps=2", "--config.train.log_every_steps=1",
                         "--config.train.checkpoint_every_steps=2"],
           "figures": {"test_accuracy": _figure(0.5, 0.5)}}
  path = tmp_path / "published.json"
  path.write_text(json.dumps({"experiments": {"cnn_mnist:quick": entry}}))
  assert reproduce.main([f"--published={path}", f"--workdir={tmp_path / 'w'}"]) == 0
  rows = json.load(open(tmp_path / "w" / "reproduce.json"))["rows"]
  assert rows[0]["status"] == "yes" and 0 <= rows[0]["measured"] <= 1
  assert rows[1]["figure"] == "wall" and rows[1]["measured"] > 0
