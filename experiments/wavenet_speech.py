"""WaveNet on real recorded speech (asterisk_sounds: five voices, 8 kHz): next-sample prediction
over 8-bit mu-law codes, unconditional, voice-conditioned or mel-conditioned (a vocoder).

Reference: van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio" (dilated causal
convolutions, gated units, global and local conditioning); generation with per-layer queues as in
Paine et al. 2016, "Fast WaveNet Generation Algorithm".

Data: `audio_folder/asterisk_sounds`, split by prompt (a seeded hash of the file's name inside its
voice folder, the same for every voice): 2,133 train, 285 validation, 413 test utterances; 12
transcript lines that name no file are skipped and listed in the prepared data's
audio_report.json. Choices read validation; test NLL is reported on every sample of every test
utterance, each with its full receptive field.

Variants (parts joined by "_"): `quick` (CPU minutes) and the default size, with `uncond`,
`voice` (the default: conditioned on the voice) or `mel` (conditioned on the voice and an
80-band log-mel spectrogram: the vocoder).
  python -m experiments.wavenet_speech --workdir=DIR                    # needs $AIGC_JAX_DATA
  python -m aigc_jax.main --config=experiments/wavenet_speech.py:quick --workdir=DIR

Measured (2-core Intel Xeon, jax 0.12.1, seed 0, one run each; test bits per sample over every
test sample, unigram entropy of the test codes 7.586): `quick_uncond` 5.063 (8 min 13 s),
`quick` (voice) 5.052 (9 min 5 s), `quick_mel` 4.942 (10 min 37 s, over the 10-minute target).
Generated speech is unvoiced noise in speech's envelope: the speaker classifier gives the asked
voice to 17.0% of `quick`'s clips (real held-out utterances: 93.7%; target 90% missed), and
`quick_mel`'s resynthesis loses to Griffin-Lim from the same spectrograms (log-spectral distance
13.77 against 10.21 dB, mel-cepstral distortion 25.56 against 14.21 dB; target missed).
The default `mel` (5,000 steps, 40 min 45 s): 4.290 bits per sample; resynthesis LSD 10.40 /
MCD 16.41 dB against Griffin-Lim's 10.21 / 14.21. Full
table, pictures and the generation speed: docs/results.md, "WaveNet on recorded speech".
"""

import ml_collections

from aigc_jax import config as config_lib
from aigc_jax.models import wavenet

PARTS = ("quick", "uncond", "voice", "mel")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  parts = config_lib.parts(arg, "wavenet_speech", PARTS)
  if len(parts & {"uncond", "voice", "mel"}) > 1:
    raise ValueError("wavenet_speech: pick one of uncond, voice, mel.")
  quick = "quick" in parts
  c = config_lib.get_config(task="audio_lm")
  c.audio_lm.condition = ("" if "uncond" in parts else "voice,mel" if "mel" in parts
                          else "voice")
  c.audio_lm.update(n_fft=256, hop=64, n_mels=40)  # 32 ms windows, 8 ms hops at 8 kHz
  # One network for both variants on this 2-core CPU (0.38 s a step at batch 16): the default
  # trains five times longer. The paper's size (2 x 10 layers, 64 residual / 256 skip channels)
  # is an accelerator's: --config.model.layers_per_stack=10 --config.model.channels=64 ...
  c.model = ml_collections.ConfigDict(dict(
      name="wavenet", vocab_size=256, channels=32, skip_channels=64, layers_per_stack=8,
      stacks=2, num_voices=0, mel_channels=0, mel_hop=0))
  field = wavenet.receptive_field(c.model)
  scored = 1024
  c.data.update(name="audio_folder/asterisk_sounds", eval_split="test", batch_size=16,
                eval_batch_size=64)
  c.data.audio_folder.missing_files = "skip"
  c.data.audio.update(window=field + scored, context=field, stride=64,
                      eval_window=field + 4096)
  c.optim.update(name="adam", lr=1e-3, schedule="warmup_cosine", warmup_steps=100,
                 min_lr_ratio=0.05, grad_clip_norm=1.0)
  steps = 1000 if quick else 5000
  c.train.update(num_steps=steps, log_every_steps=50, eval_every_steps=steps if quick else 2500,
                 checkpoint_every_steps=250, best_metric="validation_loss", best_mode="min")
  c.cpu_devices = 2
  config_lib.add_eval(c, "validation", "metrics", split="validation")
  config_lib.add_eval(c, "test", "metrics", every_steps=-1)
  c.evals.samples.update(every_steps=-1, split="test", num=5 if "uncond" not in parts else 4,
                         seconds=1.0)
  if not parts & {"uncond", "mel"}:  # scored by a speaker classifier trained once (speaker_id)
    config_lib.add_eval(c, "voices", "voice_agreement", every_steps=-1, split="test")
  if "mel" in parts:  # resynthesis of held-out utterances, beside Griffin-Lim
    config_lib.add_eval(c, "vocoder", "vocoder", every_steps=-1, split="test")
  return c
