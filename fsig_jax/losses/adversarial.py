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


def wgan_g(fake_scores: jax.Array) -> jax.Array:
  """ProGAN `G_wgan_acgan`: -mean D(G(z))."""
  return -jnp.mean(fake_scores)


def wgan_d(real_scores: jax.Array, fake_scores: jax.Array, drift: float = 0.001) -> jax.Array:
  """ProGAN `D_wgangp_acgan` without the gradient penalty: mean D(fake) - D(real)
  + drift * D(real)^2 (wgan_epsilon 0.001, Karras et al. 2018 App. A.1)."""
  return jnp.mean(fake_scores - real_scores + drift * jnp.square(real_scores))


def lsgan_d(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Least-squares GAN discriminator loss (Mao et al. 2017, Eq. 2 with a=0, b=1),
  as pix2pix `GANLoss('lsgan')` + `backward_D`: 0.5 * (mean (D(real) - 1)^2 +
  mean D(fake)^2). GPD's Eq. 2 prints the real/fake targets the other way
  round; this is the standard form."""
  return 0.5 * (jnp.mean(jnp.square(real_scores - 1.0)) + jnp.mean(jnp.square(fake_scores)))


def lsgan_g(fake_scores: jax.Array) -> jax.Array:
  """Least-squares GAN generator loss (Mao et al. 2017, c=1; pix2pix): mean (D(G(x)) - 1)^2."""
  return jnp.mean(jnp.square(fake_scores - 1.0))
