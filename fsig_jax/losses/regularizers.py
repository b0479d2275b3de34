"""StyleGAN2 regularisers: R1 and path length, both applied lazily.

R1 (Mescheder et al. 2018, Eq. 9): gamma/2 * E ||grad_x D(x)||^2 on reals.
Path length (Karras et al. 2020, Sec. 3.2, Eq. 4): E (||J_w^T y|| - a)^2 with
y ~ N(0, I) / sqrt(H W) and a the running mean of the lengths (decay 0.01).
Lazy regularisation (Sec. 3.1) runs them every k steps with weight * k.
"""
from typing import Callable, Tuple

import jax
import jax.numpy as jnp


def r1_penalty(d_fn: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """rosinality `d_r1_loss`: mean over samples of sum of squared input grads.

  Logits of shape (N, ...) (e.g. CDC's patch logits) are averaged per sample
  first, as CDC's `real_pred.view(N, -1).mean(1)`; for (N, 1) this is the sum.
  """
  grads = jax.grad(lambda x: jnp.sum(jnp.mean(d_fn(x).reshape(x.shape[0], -1), axis=1)))(real)
  return jnp.mean(jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=1))


def path_length_penalty(synth_fn: Callable[[jax.Array], jax.Array], ws: jax.Array,
                        key: jax.Array, pl_mean: jax.Array,
                        decay: float = 0.01) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """rosinality `g_path_regularize`.

  Args:
    synth_fn: ws (N, num_ws, w_dim) -> images NHWC.
    ws: the styles, the variable the Jacobian is taken against.
    key: PRNG key for the random image-space direction y.
    pl_mean: running mean of path lengths (carried in the train state).
    decay: running-mean decay (0.01, StyleGAN2 App. B).

  Returns:
    (penalty, new pl_mean, mean path length).
  """
  img, vjp = jax.vjp(synth_fn, ws)
  h, w = img.shape[1], img.shape[2]
  y = jax.random.normal(key, img.shape, img.dtype) / jnp.sqrt(h * w)
  (g,) = vjp(y)  # d(sum(img * y)) / d ws, shape (N, num_ws, w_dim)
  lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(g), axis=2), axis=1))
  new_mean = pl_mean + decay * (jnp.mean(lengths) - pl_mean)
  # As in both official codes, the penalty uses the updated mean undetached.
  penalty = jnp.mean(jnp.square(lengths - new_mean))
  return penalty, jax.lax.stop_gradient(new_mean), jnp.mean(lengths)


def gradient_penalty(d_fn: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     key: jax.Array, target: float = 1.0) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017) as ProGAN's `D_wgangp_acgan`: on per-sample
  interpolates x = real + t (fake - real), t ~ U(0, 1), mean (||grad_x D(x)|| - target)^2
  / target^2 (multiply by wgan_lambda = 10)."""
  t = jax.random.uniform(key, (real.shape[0], 1, 1, 1), real.dtype)
  mixed = real + (fake - real) * t
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(mixed)
  norms = jnp.sqrt(jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=1))
  return jnp.mean(jnp.square(norms - target)) / target ** 2
