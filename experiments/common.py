"""The base config every experiment starts from: the shared defaults live here, none in the
trainer; a task's own section and default evaluators come from its module (tasks.configure)."""

import ml_collections

from aigc_jax import evaluators, tasks


def get_config(task: str = "classify") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = task
  # > 0: run the CPU backend as this many devices (set before JAX starts; no effect on GPU/TPU
  # runs). XLA:CPU runs most non-matmul work of one computation on one thread, so splitting the
  # batch over one device per core uses the cores better.
  c.cpu_devices = 0

  # Mixed precision for every model (aigc_jax/precision.py): "bfloat16" computes in bfloat16
  # with float32 parameters, optimiser state, loss and softmax; "float32" is full precision.
  c.compute_dtype = "float32"

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
  # text_files/<folder>: how a folder of text becomes splits (aigc_jax/data/builders/text_files.py)
  c.data.text = ml_collections.ConfigDict(
      {"split_by": "characters", "train_fraction": 0.9, "delimiter": "", "bad_utf8": "error",
       "seed": 0,
       # Build-time document cleaning, "op|op(args)" (aigc_jax/data/clean.py); a report of each
       # run is written into the prepared data set's folder.
       "clean": ""})
  # image_folder/<folder>: class sub-folders of PNG/JPEG (aigc_jax/data/builders/image_folder.py)
  c.data.image = ml_collections.ConfigDict(
      {"size": 0,  # resize to size x size at build time; 0 keeps the files' (common) size
       "channels": 0,  # 1 (grey) or 3 (RGB); 0 takes the first image's
       "train_fraction": 0.8,  # used when the folder has no train/ and test/ sub-folders
       "seed": 0})
  # speakers/<folder>: lines of a play labelled with their speaker (aigc_jax/data/builders/speakers.py)
  c.data.speakers = ml_collections.ConfigDict(
      {"num_speakers": 10, "unit": "line", "test_fraction": 0.2, "seed": 0})
  # Language-model input (aigc_jax/data/lm.py): a tokenizer name turns a text data set into
  # token sequences of seq_len + 1 (inputs and shifted targets).
  c.data.tokenizer = ""  # "" (off) | char | byte | bpe:<vocab size> | unigram:<vocab size>
  c.data.seq_len = 256
  c.data.packing = "packed"  # packed: documents + end-of-text cut into sequences; windows: random
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

  # Random augmentation on the device inside the train step, "op|op(args)" (aigc_jax/augment.py),
  # e.g. "random_crop(2)|gaussian_noise(0.1)"; "views(2)|..." gives two views per example.
  c.augment = ""
  # Start from another run's parameters (aigc_jax/transfer.py): map "new<-old" subtrees.
  c.init = ml_collections.ConfigDict({"workdir": "", "checkpoint": "best", "map": ""})
  # A regex over parameter paths ("encoder/Dense_0/kernel"): matching ones are not trained.
  c.freeze = ""
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

  # DP-SGD (aigc_jax/privacy.py): per-example gradients clipped to `clip`, Gaussian noise of
  # noise_multiplier x clip on their sum; epsilon at `delta` by `accountant` (rdp_classic, rdp,
  # pld) is logged and written into summary.json.
  c.dp = ml_collections.ConfigDict({"enabled": False, "clip": 1.0, "noise_multiplier": 1.0,
                                    "delta": 1e-5, "accountant": "rdp_classic"})

  # Magnitude pruning (aigc_jax/pruning.py): at each (step, sparsity) of `rounds`, the smallest
  # weights among the kernels matching `params` are zeroed (over all of them: scope "global", or
  # per layer: "layer") and stay zero; masks live in the train state and its checkpoints.
  c.prune = ml_collections.ConfigDict({"enabled": False, "rounds": (), "scope": "global",
                                       "params": "kernel$"})

  # Federated averaging (aigc_jax/federated.py): one step is one round of `fraction` of the
  # `clients`, each running local_epochs of SGD at client_lr in batches of local_batch (0: all
  # its data); split "iid" or "shards" (two label shards a client). dp_clip/dp_noise > 0:
  # DP-FedAvg (client changes clipped, noise on their sum).
  c.fed = ml_collections.ConfigDict({
      "enabled": False, "clients": 100, "fraction": 0.1, "local_epochs": 1, "local_batch": 10,
      "client_lr": 0.1, "split": "iid", "dp_clip": 0.0, "dp_noise": 0.0})

  # Quantisation-aware training: "int8" fake-quantises every dense layer's and convolution's
  # weights and inputs while training (qwix; aigc_jax/models/__init__.py). "": off.
  c.qat = ""

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


def add_eval(c, name: str, type_: str, **kw) -> None:
  """Declares evaluator `name` with all of its type's keys (so each can be overridden)."""
  c.evals[name] = evaluators.spec(type_, **kw)
