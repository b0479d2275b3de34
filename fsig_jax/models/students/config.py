"""Architecture configs of the GPD student networks (image-to-image translators).

Frozen, hence hashable and usable as jit statics. `arch` names the network
(`fsig_jax.models.students.CONFIGS`), so a config read back from checkpoint
metadata, `CONFIGS[d['arch']].from_dict(d)`, rebuilds the same network.
"""
import dataclasses

from fsig_jax.models.config import dataclass_from_dict


def _power_of_two(v: int) -> bool:
  return isinstance(v, int) and v >= 1 and not v & (v - 1)


def _positive(cfg, *names):
  for name in names:
    if getattr(cfg, name) < 1:
      raise ValueError(f'{name} must be >= 1, got {getattr(cfg, name)}')


def _check_arch(cfg, arch):
  if cfg.arch != arch:
    raise ValueError(f'{type(cfg).__name__}.arch must be {arch!r}, got {cfg.arch!r}')


@dataclasses.dataclass(frozen=True)
class UNetMSPADEConfig:
  """The U-Net with multi-scale SPADE decoder (`unet_mspade.UNetMSPADE`).

  Attributes:
    resolution: input and output size, a power of two >= bottom_resolution.
    base_channels: encoder width at full resolution; doubles per halving.
    max_channels: cap on the widths (>= base_channels).
    bottom_resolution: the encoder's coarsest scale, a power of two >= 4.
    spade_hidden: width of every SPADE's shared conv (official 128).
    in_channels, out_channels: image channels.
  """
  resolution: int = 64
  base_channels: int = 32
  max_channels: int = 256
  bottom_resolution: int = 8
  spade_hidden: int = 64
  in_channels: int = 3
  out_channels: int = 3
  arch: str = 'unet_mspade'

  def __post_init__(self):
    _check_arch(self, 'unet_mspade')
    if not _power_of_two(self.bottom_resolution) or self.bottom_resolution < 4:
      raise ValueError(f'bottom_resolution must be a power of two >= 4, got {self.bottom_resolution}')
    if not _power_of_two(self.resolution) or self.resolution < self.bottom_resolution:
      raise ValueError(f'resolution must be a power of two >= bottom_resolution '
                       f'({self.bottom_resolution}), got {self.resolution}')
    _positive(self, 'base_channels', 'max_channels', 'spade_hidden', 'in_channels', 'out_channels')
    if self.max_channels < self.base_channels:
      raise ValueError(f'max_channels ({self.max_channels}) must be >= base_channels '
                       f'({self.base_channels})')

  @property
  def scales(self):
    """Encoder scales, full resolution first: resolution, resolution/2, ..., bottom."""
    out, r = [], self.resolution
    while r >= self.bottom_resolution:
      out.append(r)
      r //= 2
    return tuple(out)

  def width(self, res: int) -> int:
    """min(base_channels * resolution / res, max_channels)."""
    return min(self.base_channels * (self.resolution // res), self.max_channels)

  @classmethod
  def from_dict(cls, d: dict) -> 'UNetMSPADEConfig':
    return dataclass_from_dict(cls, d)


@dataclasses.dataclass(frozen=True)
class Pix2PixConfig:
  """The pix2pix U-Net generator (`pix2pix.Pix2PixUNet`).

  Attributes:
    resolution: input and output size, a power of two >= 4; the encoder has
      log2(resolution) stride-2 convs, down to 1x1 (official unet_256: 8).
    ngf: width of the first conv; doubles per level.
    max_channels: cap on the widths (official ngf * 8 = 512).
    dropout: rate of the decoder dropout (official 0.5), in [0, 1).
    in_channels, out_channels: image channels.
  """
  resolution: int = 64
  ngf: int = 64
  max_channels: int = 512
  dropout: float = 0.5
  in_channels: int = 3
  out_channels: int = 3
  arch: str = 'pix2pix'

  def __post_init__(self):
    _check_arch(self, 'pix2pix')
    if not _power_of_two(self.resolution) or self.resolution < 4:
      raise ValueError(f'resolution must be a power of two >= 4, got {self.resolution}')
    _positive(self, 'ngf', 'max_channels', 'in_channels', 'out_channels')
    if self.max_channels < self.ngf:
      raise ValueError(f'max_channels ({self.max_channels}) must be >= ngf ({self.ngf})')
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f'dropout must be in [0, 1), got {self.dropout}')

  @property
  def num_downs(self) -> int:
    return self.resolution.bit_length() - 1

  def width(self, level: int) -> int:
    """Output width of encoder conv `level` (0 = outermost): min(ngf * 2^level, max_channels)."""
    return min(self.ngf * 2 ** level, self.max_channels)

  @classmethod
  def from_dict(cls, d: dict) -> 'Pix2PixConfig':
    return dataclass_from_dict(cls, d)
