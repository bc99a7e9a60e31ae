"""aigc_jax: a JAX/Flax (linen) research codebase for generative and self-supervised models."""

__version__ = "0.1.0"
