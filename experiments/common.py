"""The base config every experiment starts from: all defaults live here, none in the trainer."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = "classify"
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

  c.loss = ml_collections.ConfigDict({"z_loss": 0.0})

  # task "gan" (aigc_jax/tasks/gan.py)
  c.gan = ml_collections.ConfigDict()
  c.gan.loss = "nonsaturating"  # nonsaturating | minimax | wasserstein | hinge
  c.gan.n_critic = 1  # critic updates per generator update, each on 1/n_critic of the batch
  c.gan.gp_weight = 0.0  # WGAN-GP's lambda (10); needs model.critic=True
  c.gan.r1_weight = 0.0  # R1's gamma; needs model.critic=True
  c.gan.d_lr = 0.0  # > 0 overrides optim.lr for the discriminator / the generator
  c.gan.g_lr = 0.0
  c.gan.ema_decay = 0.999  # moving average of the generator's weights, for sampling; 0: off
  c.gan.sample_bn = "batch"  # batch-norm statistics when sampling: batch | running
  c.gan.eval_samples = 10000  # samples scored (FID/IS/classes) per evaluation; 0: grids only
  c.gan.classifier = "experiments.cnn_mnist"  # trained once per data set when no workdir given
  c.gan.classifier_workdir = ""  # a trained classifier workdir to score with  # lm: weight of log(Z)^2 (1e-4 in PaLM)

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

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 0  # exactly one of num_steps / num_epochs is positive
  c.train.num_epochs = 0.0
  c.train.log_every_steps = 50
  c.train.eval_every_steps = 500
  c.train.checkpoint_every_steps = 500  # a multiple of log_every_steps, so resumes log alike
  c.train.keep_checkpoints = 2
  # Also keep the checkpoint with the best "<eval split>_<metric>" in DIR/best/ (e.g. "loss");
  # best_mode "min" or "max". Empty: off.
  c.train.best_metric = ""
  c.train.sample_tokens = 200  # generative tasks write a sample this long per evaluation; 0: off
  c.train.best_mode = "min"
  c.train.async_checkpoints = True
  c.train.progress_bar = True

  # Mesh axis sizes; one may be -1 (filled with the remaining devices).
  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})

  # Sweep: ((dotted key, (values...)), ...). Each combination runs in DIR/<label>/ and the
  # summary aggregates over the `seed` key (mean and spread).
  c.sweep = ()
  c.reference = ml_collections.ConfigDict()  # published numbers per sweep group, for the table
  return c
