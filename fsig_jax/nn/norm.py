"""Instance normalisation (Ulyanov et al. 2016) without affine parameters."""
import jax
import jax.numpy as jnp

IN_EPS = 1e-5  # torch nn.InstanceNorm2d default


def instance_norm(x: jax.Array, eps: float = IN_EPS) -> jax.Array:
  """Normalises NHWC `x` over H, W per sample and channel.

  torch `nn.InstanceNorm2d(affine=False, track_running_stats=False)`:
  (x - mean) / sqrt(var + eps) with the biased variance. Statistics are taken
  in float32 and the result is cast back to x's dtype. A 1x1 map normalises
  to zero.
  """
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x32 - mean), axis=(1, 2), keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)
