"""The base config every experiment starts from. Each default is defined once: the shared ones
here, none in the trainer; a step option's keys in its module (options/*.py DEFAULTS), a local
builder's in its options dataclass (data/builders/*.py SECTION), an evaluator's in its module
(DEFAULTS, through add_eval), and a task's own section and default evaluators in its module
(tasks.configure)."""

import ml_collections

from aigc_jax import evaluators, options, tasks
from aigc_jax.data import audio, sources, video


def get_config(task: str = "classify") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = task
  # > 0: run the CPU backend as this many devices (set before JAX starts; no effect on GPU/TPU
  # runs). XLA:CPU runs most non-matmul work of one computation on one thread, so splitting the
  # batch over one device per core uses the cores better.
  c.cpu_devices = 0

  # Model: `name` picks aigc_jax/models/<name>.py; the other keys are that module's fields.
  c.model = ml_collections.ConfigDict({"name": "mlp"})

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist_idx"  # a local builder (aigc_jax/data/builders) or a tfds catalog name
  c.data.data_dir = ""  # raw files for local builders; empty means $AIGC_JAX_DATA
  c.data.tfds_dir = ""  # where prepared data sets live; empty means tfds' default
  # Apache Beam pipeline flags, e.g. "--runner=DirectRunner" or a Dataflow/Flink/Spark runner's:
  # set, local builders are prepared by Beam (pip install apache-beam). Empty: in this process.
  c.data.beam_options = ""
  c.data.train_split = "train"
  c.data.eval_split = "test"
  # Each local builder's build options (its SECTION dataclass), e.g. data.text.train_fraction.
  c.data.update(sources.builder_sections())
  # Language-model input (aigc_jax/data/tokens.py): a tokenizer name turns a text data set into
  # token sequences of seq_len + 1 (inputs and shifted targets).
  c.data.tokenizer = ""  # "" (off) | char | byte | bpe:<vocab size> | unigram:<vocab size>
  c.data.seq_len = 256
  c.data.packing = "packed"  # packed: documents + end-of-text cut into sequences; windows: random
  # packing "examples": the text feature tokenised, where its ids go, and whether a text longer
  # than seq_len is cut (text classification) or an error (captions, whose end carries meaning).
  # Comma-separated lists tokenise several texts ("caption,negative": a hard negative too).
  c.data.text_key = "text"
  c.data.tokens_key = "input"
  c.data.truncate = True
  # Audio input (aigc_jax/data/audio.py): window > 0 turns utterances into windows of samples.
  c.data.audio = ml_collections.ConfigDict(audio.DEFAULTS)
  # Generated video (aigc_jax/data/video.py): frames > 0 makes Moving MNIST of data.name's digits.
  c.data.video = ml_collections.ConfigDict(video.DEFAULTS)
  c.data.preprocess = ""  # "op1|op2(args)", see aigc_jax/data/ops.py
  c.data.batch_size = 128  # global, across all hosts and devices
  c.data.eval_batch_size = 1000
  c.data.shuffle = True  # False: the stored order every epoch (some papers' recipes)
  c.data.cache = True  # hold decoded records in host memory (small data sets)
  c.data.prefetch = 2  # batches prepared ahead in a background thread
  # > 0: train on this many examples of each class of the training split (few-label transfer),
  # drawn with data.subset_seed (-1: the run's seed, so each seed is its own labelled subset).
  c.data.labels_per_class = 0
  c.data.subset_seed = -1

  # Evaluators by name (aigc_jax/evaluators/), e.g. evaluators.spec("linear_probe", ...);
  # each is logged under its name and kept in summary.json as "<name>_<metric>".
  c.evals = ml_collections.ConfigDict()

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adamw"  # sgd | momentum | adam | adamw
  c.optim.lr = 1e-3
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.momentum = 0.9
  c.optim.weight_decay = 0.0
  c.optim.decay = "matrices"  # adamw decays: matrices (rank >= 2, not biases/norms) | all
  c.optim.schedule = "constant"  # constant | cosine | warmup_cosine | linear
  c.optim.warmup_steps = 0
  c.optim.min_lr_ratio = 0.0  # floor of cosine/linear decay, as a fraction of lr
  c.optim.grad_clip_norm = 0.0  # 0 disables clipping
  c.optim.cooldown_fraction = 0.2  # schedule "wsd": the final share of steps decaying to the floor
  c.optim.lr_drops = ()  # ((step, factor), ...): the rate times factor from that step on
  # name "muon": Muon (momentum, then Newton-Schulz orthogonalisation) for the kernels whose path
  # matches muon_params at learning rate `lr`; AdamW (b1, b2, eps) at `adam_lr` for the rest
  # (embeddings, head, norms, biases, mixing weights), both following the schedule.
  c.optim.muon_params = r"(^|/)block[^/]*/(qkv|out|fc|proj)/kernel$"
  c.optim.adam_lr = 3e-3
  c.optim.muon_momentum = 0.95
  c.optim.muon_ns_steps = 5

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 0  # exactly one of num_steps / num_epochs is positive
  c.train.num_epochs = 0.0
  c.train.log_every_steps = 50
  c.train.eval_every_steps = 500
  c.train.checkpoint_every_steps = 500  # a multiple of log_every_steps, so resumes log alike
  c.train.keep_checkpoints = 2
  # Also keep the checkpoint with the best "<evaluator>_<metric>" in DIR/best/ (e.g. "test_loss");
  # best_mode "min" or "max". Empty: off.
  c.train.best_metric = ""
  c.train.best_mode = "min"
  c.train.keep_best_checkpoint = True  # False: only report the best value in the summary
  c.train.async_checkpoints = True
  c.train.progress_bar = True
  # > 1: each step's gradient is the mean over this many micro-batches of the global batch,
  # computed one after another (a scan), then one optimiser update: batches larger than memory.
  c.train.grad_accum_steps = 1
  # A NaN or infinite loss or gradient norm: "stop" (state left as it was, the run stops with
  # the last good checkpoint and names the step), "skip" (the update is skipped and counted as
  # nonfinite_step in the metrics) or "ignore".
  c.train.nonfinite = "stop"

  # Step options (aigc_jax/options/): each adds the keys it owns (dp, prune, fed, augment,
  # init, freeze, compute_dtype, qat); add_option adds one of your own.
  c.options = options.BUILTIN
  c.update(ml_collections.ConfigDict(options.defaults()))

  # Mesh axis sizes; one may be -1 (filled with the remaining devices).
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})

  # Sweep: ((dotted key, (values...)), ...). Each combination runs in DIR/<label>/ and the
  # summary aggregates over the `seed` key (mean and spread).
  c.sweep = ()
  # "module:function": run function(config, workdir) instead of one training run or the sweep,
  # for studies that train many runs and analyse them (experiments/scaling_shakespeare.py).
  c.runner = ""
  c.reference = ml_collections.ConfigDict()  # published numbers per sweep group, for the table
  tasks.configure(c)
  return c


def add_option(c, name: str) -> None:
  """Turns on an option module of your own ("my_project.my_option"): its keys join the config."""
  with c.unlocked():
    c.options = tuple(c.options) + (name,)
    for k, v in getattr(options.module(name), "DEFAULTS", {}).items():
      c[k] = v


def variant(arg: str | None, name: str, valid: tuple) -> str:
  """An experiment's variant argument ("" for the default), checked against `valid`."""
  arg = arg or ""
  if arg not in valid:
    raise ValueError(f"Unknown variant {arg!r} of {name}; valid: "
                     f"{', '.join(v for v in valid if v)}, or none.")
  return arg


def parts(arg: str | None, name: str, valid: tuple) -> set[str]:
  """The parts of a variant made by joining `valid` parts with "_" (or ","), e.g. latent_quick."""
  chosen = set(filter(None, (arg or "").replace(",", "_").split("_")))
  if chosen - set(valid):
    raise ValueError(f"Unknown variant {arg!r} of {name}: combine {', '.join(valid)} with '_' "
                     "(e.g. " + "_".join(valid[:2]) + "), or none.")
  return chosen


def add_eval(c, name: str, type_: str, **kw) -> None:
  """Declares evaluator `name` with all of its type's keys (so each can be overridden)."""
  c.evals[name] = evaluators.spec(type_, **kw)
