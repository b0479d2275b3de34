"""Named architectures for models built from scratch (no checkpoint).

`random:RES` gives a small randomly initialised StyleGAN2 at RES px, used for
smoke runs and tests until a trained source model is available.
"""
from fsig_jax.models.config import StyleGAN2Config, ada_channels


def small_config(resolution: int) -> StyleGAN2Config:
  """Widths min(4096 / res, 128): 128 up to 32 px, 64 at 64 px; z = w = 128."""
  ch = ada_channels(resolution, channel_base=4096, channel_max=128)
  return StyleGAN2Config(resolution, ch, ch, z_dim=128, w_dim=128, n_mlp=4)


def parse_random_spec(spec: str) -> StyleGAN2Config:
  """'random:64' -> small_config(64); clear error for anything else."""
  try:
    res = int(spec.split(':', 1)[1])
    return small_config(res)
  except (IndexError, ValueError) as e:
    raise ValueError(f'bad model spec {spec!r}: use random:RES with RES a power of two in '
                     f'[8, 1024] ({e})') from None
