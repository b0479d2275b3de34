"""Named architectures for models built from scratch (no checkpoint).

`random:RES` gives a small randomly initialised StyleGAN2 at RES px (smoke runs
and tests); `random:NAME` a named architecture from `NAMED`, e.g. the anime-face
source model `random:anime64` that configs/pretrain_anime64.py trains.
"""
from fsig_jax.models.config import StyleGAN2Config, ada_channels
from fsig_jax.models.progan import ProGANConfig


def small_config(resolution: int) -> StyleGAN2Config:
  """Widths min(4096 / res, 128): 128 up to 32 px, 64 at 64 px; z = w = 128."""
  ch = ada_channels(resolution, channel_base=4096, channel_max=128)
  return StyleGAN2Config(resolution, ch, ch, z_dim=128, w_dim=128, n_mlp=4)


def anime64() -> StyleGAN2Config:
  """The offline source model: 64 px, widths 256/256/128/64/32 for 4..64 px.

  stylegan2-ada-pytorch's 'auto' config would use min(16384 / res, 512)
  channels (512 up to 32 px, 256 at 64 px); on 2 CPU cores that is ~50x the
  FLOPs, so widths are cut, most at high resolution where FLOPs live: every
  block above 8 px then costs about the same. Measured on the 2-core machine
  (batch 16, full step with lazy regularisers): 1.45 s/step, against 3.5 s for
  widths 256/256/256/128/64. Mapping depth 2 as in the 'auto' config (map=2);
  z = w = 256.
  """
  ch = (256, 256, 128, 64, 32)
  return StyleGAN2Config(64, ch, ch, z_dim=256, w_dim=256, n_mlp=2)


def progan64() -> ProGANConfig:
  """A small ProGAN at 64 px for the offline source (RICK's second architecture).

  Official ProGAN widths nf(s) = min(8192 / 2^s, 512) would be 512 up to
  32 px and 256 at 64 px; cut like `anime64` for 2 CPU cores to
  256/256/128/64/32 for 4..64 px; z = 256, D's hidden dense 256.
  """
  return ProGANConfig(64, (256, 256, 128, 64, 32), z_dim=256, d_hidden=256)


def progan32() -> ProGANConfig:
  """The small ProGAN trained here (configs/pretrain_progan32.py): 32 px, 128/128/64/32.

  At 64 px even `progan64` costs about a StyleGAN2 step per image on 2 CPU
  cores (measured ~1 s/step at batch 16 with widths 128/128/64/32/16), so the
  ProGAN that fits beside the anime64 source in a session stops at 32 px;
  z = 128, D's hidden dense 128.
  """
  return ProGANConfig(32, (128, 128, 64, 32), z_dim=128, d_hidden=128)


NAMED = {'anime64': anime64, 'progan64': progan64, 'progan32': progan32}


def parse_random_spec(spec: str) -> StyleGAN2Config:
  """'random:64' -> small_config(64), 'random:anime64' -> anime64(); else a clear error."""
  name = spec.split(':', 1)[-1]
  if name in NAMED:
    return NAMED[name]()
  try:
    res = int(name)
    return small_config(res)
  except (IndexError, ValueError) as e:
    raise ValueError(f'bad model spec {spec!r}: use random:RES with RES a power of two in '
                     f'[8, 1024], or random:NAME with NAME in {sorted(NAMED)} ({e})') from None
