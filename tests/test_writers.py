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
