"""Learned generators: GANs and latent diffusion models."""
