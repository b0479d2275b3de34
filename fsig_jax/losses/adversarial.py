"""Adversarial losses of StyleGAN2 (Karras et al. 2020; rosinality train.py).

Non-saturating logistic loss (Goodfellow et al. 2014, Sec. 3): D minimises
softplus(D(fake)) + softplus(-D(real)); G minimises softplus(-D(G(z))).
"""
import jax
import jax.numpy as jnp


def d_logistic(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """rosinality `d_logistic_loss`: mean softplus(fake) + mean softplus(-real)."""
  return jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))


def g_nonsaturating(fake_logits: jax.Array) -> jax.Array:
  """rosinality `g_nonsaturating_loss`: mean softplus(-D(G(z)))."""
  return jnp.mean(jax.nn.softplus(-fake_logits))
