"""Diagonal Fisher information from per-sample squared gradients.

EWC, RICK and AdAM all estimate the Fisher as the EWC literature does
(Kirkpatrick et al. 2017; `estimate_fisher` in yunqing-me/RICK and AdAM,
gan_training/models/model_probe_tune.py): one sample at a time, the squared
gradient of that sample's loss, averaged over the samples. Averaging the loss
over a batch first and then squaring would underestimate F, so gradients are
per sample (vmapped in chunks; the chunk size trades memory for speed only).
"""
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from fsig_jax.models.functional import Models


def mean_squared_grads(loss_fn: Callable[[Any, Any], jax.Array], params, xs,
                       chunk: int = 8):
  """F = mean_n (d loss_fn(params, x_n) / d params)^2.

  Args:
    loss_fn: (params, x) -> scalar loss of one sample x.
    params: the pytree the Fisher is taken with respect to.
    xs: a pytree of per-sample inputs, each leaf with a leading axis of N.
    chunk: samples whose gradients are computed together (vmap).

  Returns:
    A pytree like `params`.
  """
  n = jax.tree.leaves(xs)[0].shape[0]
  if n < 1:
    raise ValueError('the Fisher needs at least one sample')
  chunk = max(1, min(chunk, n))
  n_chunks = -(-n // chunk)
  pad = n_chunks * chunk - n
  weights = jnp.concatenate([jnp.ones((n,), jnp.float32), jnp.zeros((pad,), jnp.float32)])
  xs = jax.tree.map(lambda x: jnp.concatenate([x, x[:pad]]), xs)
  grad_fn = jax.vmap(jax.grad(loss_fn), in_axes=(None, 0))

  def body(acc, chunk_xs):
    x, w = chunk_xs
    grads = grad_fn(params, x)

    def add(a, g):  # sum of squares over the chunk; padded samples have weight 0
      return a + jnp.sum(jnp.square(g) * w.reshape((-1,) + (1,) * (g.ndim - 1)), axis=0)
    return jax.tree.map(add, acc, grads), None

  split = lambda x: x.reshape((n_chunks, chunk) + x.shape[1:])  # noqa: E731
  acc0 = jax.tree.map(jnp.zeros_like, params)
  acc, _ = jax.lax.scan(body, acc0, (jax.tree.map(split, xs), split(weights)))
  return jax.tree.map(lambda a: a / n, acc)


def generated_nll(models, g_params, g_buffers, d_params, z: jax.Array,
                  noise_key: jax.Array) -> jax.Array:
  """softplus(-D(G(z))) for one latent z (z_dim,): G's per-image loss.

  RICK/AdAM: `fake_img, _ = g_ema([z.view(1, -1)])` (a single style, rosinality
  `randomize_noise=True`), `g_nonsaturating_loss(d_ema(fake_img))`. With a
  batch of one, D's minibatch-stddev group is min(4, 1) = 1, as there.
  """
  ws = models.broadcast(models.map(g_params, g_buffers, z[None]))
  img = models.synth(g_params, g_buffers, ws, noise_key)
  logits = models.disc(d_params, img, return_features=False)
  return jnp.sum(jax.nn.softplus(-logits))


def generator_fisher(models, g_params, g_buffers, d_params, zs, noise_keys, chunk: int = 8):
  """Fisher of G's non-saturating loss per generated image, w.r.t. G's params."""
  loss = lambda p, x: generated_nll(models, p, g_buffers, d_params, *x)  # noqa: E731
  return mean_squared_grads(loss, g_params, (zs, noise_keys), chunk)


@functools.partial(jax.jit, static_argnames=('cfg', 'chunk'))
def generator_fisher_jit(cfg, g_params, g_buffers, d_params, zs, noise_keys, chunk: int = 8):
  """`generator_fisher` for a StyleGAN2Config, compiled once per (config, shapes, chunk)."""
  return generator_fisher(Models(cfg), g_params, g_buffers, d_params, zs, noise_keys, chunk)
