"""Architecture config of a StyleGAN2 generator/discriminator pair.

Channel widths are explicit per resolution, so narrow or non-standard models
(and checkpoints whose widths are read off their tensors) need no special case.
"""
import dataclasses
import json
import math
from typing import Optional, Tuple

MIN_RES, MAX_RES = 8, 1024


def rosinality_channels(resolution: int, channel_multiplier: int = 2) -> Tuple[int, ...]:
  """Widths at 4, 8, ..., resolution as in rosinality's `Generator.channels`."""
  table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64,
           512: 32, 1024: 16}
  return tuple(table[r] * (channel_multiplier if r >= 64 else 1)
               for r in resolutions(resolution))


def ada_channels(resolution: int, channel_base: int = 32768,
                 channel_max: int = 512) -> Tuple[int, ...]:
  """Widths min(channel_base // res, channel_max) as in stylegan2-ada-pytorch."""
  return tuple(min(channel_base // r, channel_max) for r in resolutions(resolution))


def resolutions(resolution: int) -> Tuple[int, ...]:
  """4, 8, ..., resolution."""
  return tuple(2 ** i for i in range(2, int(math.log2(resolution)) + 1))


@dataclasses.dataclass(frozen=True)
class StyleGAN2Config:
  """Everything needed to build G and D; hashable, so usable as a jit static.

  Attributes:
    resolution: output size, a power of two in [8, 1024].
    g_channels: generator widths at 4, 8, ..., resolution.
    d_channels: discriminator widths at 4, 8, ..., resolution.
    z_dim, w_dim: latent sizes. mapping_hidden: width of the inner mapping
      layers (defaults to w_dim; ada-pytorch `layer_features`).
    n_mlp: mapping layers (8 in StyleGAN2).
    lr_mul: mapping learning-rate multiplier (0.01, Karras et al. 2019 App. C).
    mbstd_group, mbstd_features: minibatch-stddev settings (4, 1).
    g_conv_clamp, d_conv_clamp: ada-pytorch activation clamp (None = off;
      official ada configs use 256).
    resample_taps: FIR filter taps ([1, 3, 3, 1]).
    img_channels: 3.
  """
  resolution: int
  g_channels: Tuple[int, ...]
  d_channels: Tuple[int, ...]
  z_dim: int = 512
  w_dim: int = 512
  n_mlp: int = 8
  mapping_hidden: Optional[int] = None
  lr_mul: float = 0.01
  mbstd_group: int = 4
  mbstd_features: int = 1
  g_conv_clamp: Optional[float] = None
  d_conv_clamp: Optional[float] = None
  resample_taps: Tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)
  img_channels: int = 3

  def __post_init__(self):
    r = self.resolution
    if r < MIN_RES or r > MAX_RES or r & (r - 1):
      raise ValueError(f'resolution must be a power of two in [{MIN_RES}, {MAX_RES}], got {r}')
    n = len(resolutions(r))
    for name in ('g_channels', 'd_channels'):
      v = tuple(int(c) for c in getattr(self, name))
      object.__setattr__(self, name, v)
      if len(v) != n:
        raise ValueError(f'{name} needs {n} widths (for {resolutions(r)}), got {len(v)}')
    object.__setattr__(self, 'resample_taps', tuple(float(t) for t in self.resample_taps))
    if self.d_channels[0] % self.mbstd_features:
      raise ValueError('d_channels[0] must be divisible by mbstd_features')

  @property
  def num_ws(self) -> int:
    """Number of per-layer styles: 2 * log2(resolution) - 2."""
    return 2 * int(math.log2(self.resolution)) - 2

  def g_width(self, res: int) -> int:
    return self.g_channels[int(math.log2(res)) - 2]

  def d_width(self, res: int) -> int:
    return self.d_channels[int(math.log2(res)) - 2]

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict) -> 'StyleGAN2Config':
    return dataclass_from_dict(cls, d)


def dataclass_from_dict(cls, d: dict):
  """cls(**d) for an architecture config, naming unknown fields clearly."""
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(d) - known)
  if unknown:
    raise ValueError(f'unknown {cls.__name__} fields {unknown}; known: {sorted(known)}')
  return cls(**d)
