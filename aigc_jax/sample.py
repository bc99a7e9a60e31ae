"""`python -m aigc_jax.sample --workdir=DIR`: the documented command for aigc_jax/tools/sample.py
(text from a language model, an image grid from a GAN or VAE run)."""

from aigc_jax.tools.sample import main

if __name__ == "__main__":
  main()
