"""Speaker (voice) identification on real recorded speech: the scorer of generated audio.

A log-mel CNN with statistics pooling (models/audio_cnn.py) classifies one-second windows of
asterisk_sounds into its five voices; the splits are by prompt, so held-out accuracy is on
sentences never heard in training. Its accuracy on real held-out audio is the ceiling for the
voice agreement of generated speech, and its embedding gives the Frechet speaker distance
(evaluators/voice_agreement.py), as the MNIST classifier scores generated digits. Trained once
per data set and cached by aigc_jax/tools/scorer.py when an evaluator names it.
  python -m experiments.speaker_id --workdir=DIR        # needs $AIGC_JAX_DATA

Measured (2-core Intel Xeon, jax 0.12.1, seed 0): 88.2% of the test split's one-second chunks
(validation 88.7%; many chunks are mostly silence or padding), 93.7% of the test utterances'
first seconds; 56 s. docs/results.md, "WaveNet on recorded speech".
"""

import ml_collections

from aigc_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_lib.variant(arg, "speaker_id", ("",))
  c = config_lib.get_config(task="classify")
  c.classify.update(input_key="audio", label_key="voice")
  c.model = ml_collections.ConfigDict(dict(
      name="audio_cnn", num_classes=5, sample_rate=8000, n_fft=256, hop=64, n_mels=40,
      channels=(64, 128, 128), embed=64))
  c.data.update(name="audio_folder/asterisk_sounds", eval_split="test", batch_size=32,
                eval_batch_size=128)
  c.data.audio_folder.missing_files = "skip"
  # One-second windows every 0.1 s for training; held-out utterances cut into one-second chunks.
  c.data.audio.update(window=8000, context=0, stride=800)
  c.optim.update(name="adam", lr=1e-3, schedule="warmup_cosine", warmup_steps=50,
                 min_lr_ratio=0.05)
  c.train.update(num_steps=3000, log_every_steps=100, eval_every_steps=1000,
                 checkpoint_every_steps=1000, best_metric="validation_accuracy", best_mode="max")
  c.cpu_devices = 2
  config_lib.add_eval(c, "validation", "metrics", split="validation")
  config_lib.add_eval(c, "test", "metrics", every_steps=-1)
  return c
