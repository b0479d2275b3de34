"""Adaptive instance normalisation, AdaIN (Huang & Belongie, ICCV 2017).

Follows clovaai/stargan-v2 core/model.py `AdaIN`: a linear layer maps the style
code s to a per-channel scale and shift,

  h = fc(s)                                  # (N, 2 * num_features)
  gamma, beta = h[:, :C], h[:, C:]           # torch.chunk(h, 2, dim=1)
  out = (1 + gamma) * instance_norm(x) + beta,

with the param-free instance norm of torch `nn.InstanceNorm2d(affine=False)`
(`fsig_jax.nn.norm.instance_norm`). The parameter name follows the official
attribute (`fc`).

Init: official StarGAN v2 re-initialises every Linear and Conv2d with
`utils.he_init` (kaiming_normal_, fan_in, relu gain; bias 0), so `fc` defaults
to that (an untruncated normal with variance 2 / style_dim) rather than flax's
lecun normal.
"""
from typing import Callable

import flax.linen as nn
import jax

from fsig_jax.nn.norm import instance_norm

# torch.nn.init.kaiming_normal_(w, mode='fan_in', nonlinearity='relu'): N(0, 2 / fan_in).
he_normal = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


class AdaIN(nn.Module):
  """AdaIN(x, s) for NHWC x with num_features channels and (N, style_dim) s."""
  num_features: int
  kernel_init: Callable = he_normal

  @nn.compact
  def __call__(self, x: jax.Array, s: jax.Array) -> jax.Array:
    c = self.num_features
    if x.ndim != 4 or x.shape[-1] != c:
      raise ValueError(f'AdaIN({c}) expects NHWC inputs with {c} channels, got {x.shape}')
    if s.ndim != 2 or s.shape[0] != x.shape[0]:
      raise ValueError(f'AdaIN expects styles of shape (N={x.shape[0]}, style_dim), got {s.shape}')
    h = nn.Dense(2 * c, kernel_init=self.kernel_init, name='fc')(s)
    gamma, beta = h[:, None, None, :c], h[:, None, None, c:]
    return (1 + gamma) * instance_norm(x) + beta
