"""Sampling procedures shared by tasks and the command line (aigc_jax/tools/sample.py).

Each is a jittable function of a key, batched and deterministic given it: `text` (tokens with a
key/value cache), `latent` (decoding draws from a latent prior: GANs, VAEs).
"""
