"""Spatially-adaptive normalisation, SPADE (Park et al., CVPR 2019).

Follows the official NVlabs/SPADE models/networks/normalization.py `SPADE`:
param-free normalisation of x, then a per-pixel scale and shift predicted from
the conditioning map,

  shared = relu(conv_k(cond -> hidden))            # `mlp_shared`
  gamma = conv_k(shared -> C); beta = conv_k(shared -> C)  # `mlp_gamma`, `mlp_beta`
  out = norm(x) * (1 + gamma) + beta,

cond being resized to x's H, W by nearest neighbour first when they differ
(official `F.interpolate(segmap, size=x.size()[2:], mode='nearest')`).

Decision (deviation): the official default param-free norm is synchronized
batch norm ('spadesyncbatch3x3'); we use instance norm (the official
'spadeinstance3x3' option). It has no running statistics, so a network built
from it is a pure function of its params, and each image is normalised alone,
independent of the batch size and of the other images in the batch.
Parameter names follow the official attributes.
"""
import flax.linen as nn
import jax

from fsig_jax.nn.norm import instance_norm


class SPADE(nn.Module):
  """SPADE(x, cond) for NHWC x and NHWC cond (any spatial size, any channels).

  Attributes:
    hidden: width of the shared conv (official `nhidden` = 128).
    kernel: size of the three convs (official 3, 'SAME' padding).
  """
  hidden: int = 128
  kernel: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    if cond.shape[1:3] != (h, w):
      cond = jax.image.resize(cond, (cond.shape[0], h, w, cond.shape[3]), 'nearest')
    k = (self.kernel, self.kernel)
    shared = jax.nn.relu(nn.Conv(self.hidden, k, padding='SAME', name='mlp_shared')(cond))
    gamma = nn.Conv(c, k, padding='SAME', name='mlp_gamma')(shared)
    beta = nn.Conv(c, k, padding='SAME', name='mlp_beta')(shared)
    return instance_norm(x) * (1 + gamma) + beta
