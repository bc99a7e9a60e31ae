import json
import os

from aigc_jax import writers


def test_resume_drops_later_events_and_a_torn_last_line(tmp_path):
  path = tmp_path / "metrics.jsonl"
  lines = [json.dumps({"step": s, "split": "train", "loss": 1.0 / s}) for s in (10, 20, 30)]
  path.write_text("\n".join(lines) + "\n" + '{"step": 40, "spl')  # killed mid-write
  w = writers.MetricWriter(str(tmp_path), resume_step=20, tensorboard=False)
  w.write(30, "train", {"loss": 0.5})
  w.write(30, "test", {"loss": 0.6, "accuracy": 0.9})
  events = writers.read_metrics(str(path))
  assert [(e["step"], e["split"]) for e in events] == [(10, "train"), (20, "train"),
                                                        (30, "train"), (30, "test")]
  assert events[2]["loss"] == 0.5


def test_plots_one_png_per_metric(tmp_path):
  events = [{"step": s, "split": sp, "loss": 1.0 / s, "accuracy": 0.1 * s}
            for s in (1, 2, 3) for sp in ("train", "test")]
  paths = writers.plot_metrics(events, str(tmp_path))
  assert sorted(os.path.basename(p) for p in paths) == ["accuracy.png", "loss.png"]
  assert all(os.path.getsize(p) > 1000 for p in paths)


def test_progress_without_a_terminal_is_one_plain_line_per_log_interval(tmp_path, monkeypatch):
  import io  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from aigc_jax import train  # pylint: disable=import-outside-toplevel
  from tests import helpers  # pylint: disable=import-outside-toplevel
  try:  # imported but not running a kernel (as after the notebook tests): still no TTY
    __import__("ipykernel.kernelapp")
  except ImportError:
    pass
  err = io.StringIO()  # not a TTY, as when a batch job's output goes to a file
  monkeypatch.setattr(sys, "stderr", err)
  train.run(helpers.tiny_config(str(tmp_path / "tfds"), num_steps=20, progress_bar=True),
            str(tmp_path / "wd"))
  lines = [l for l in err.getvalue().splitlines() if l.startswith("step ")]
  assert "step/s]" not in err.getvalue()  # no tqdm bar for the steps (data preparation's may be)
  assert [l.split()[1] for l in lines] == ["5/20", "10/20", "15/20", "20/20"]
  assert all("loss=" in l and "step/s" in l for l in lines)
  # Progress off: nothing at all.
  before = err.getvalue()
  quiet = writers.progress_bar(10, 0, enabled=False)
  quiet.set_postfix({"loss": "1"})
  quiet.update(1)
  assert err.getvalue() == before
