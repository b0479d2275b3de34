"""rosinality/stylegan2-pytorch checkpoints <-> our parameter trees.

Handles training checkpoints (`g`, `d`, `g_ema`, `args`, optimiser states) and
`convert_weight.py` outputs (`g_ema`, `latent_avg`, optionally `d`). The
architecture is read off the tensors: mapping depth and sizes from
`style.{i}.weight`, resolution from the number of `to_rgbs`, widths from each
conv. Rosinality's layer names (model.py):

  style.{1..n_mlp}            EqualLinear (lr_mul 0.01; index 0 is PixelNorm)
  input.input                 ConstantInput (1, C, 4, 4)
  conv1 / to_rgb1             4x4 StyledConv / ToRGB
  convs.{2j}, convs.{2j+1}    up-conv and conv of resolution 8 * 2^j
  to_rgbs.{j}                 ToRGB of resolution 8 * 2^j
  noises.noise_{i}            constant noise, layer order b4.conv1, b8.conv0, ...
  D: convs.0 (fromRGB), convs.{k} ResBlocks (conv1, conv2, skip),
     final_conv, final_linear.{0,1}

`export_checkpoint` goes the other way: a ModelBundle -> the dict
convert_weight.py writes (`g_ema`, `latent_avg`, plus `g` and `d` when the
bundle has them), with every tensor and buffer of rosinality's
`Generator.state_dict()` / `Discriminator.state_dict()` in their order (the blur
kernels `*.blur.kernel`, `*.upsample.kernel`, `convs.{k}.conv2.0.kernel` and
`convs.{k}.skip.0.kernel` included), so `generate.py` loads it with
`load_state_dict`. `torch_writer.save` writes it without torch.
"""
from typing import Dict, Optional

import numpy as np

from fsig_jax.convert.state import StateDict, conv, dense
from fsig_jax.errors import CheckpointError
from fsig_jax.models.config import StyleGAN2Config, resolutions, rosinality_channels

LR_MLP = 0.01  # rosinality Generator(lr_mlp=0.01); not stored in checkpoints.
STDDEV_GROUP = 4  # rosinality Discriminator.stddev_group (hard-coded).


def _styled_conv(sd: StateDict, p: str) -> dict:
  w = sd.get(f'{p}.conv.weight')[0]  # (out, in, 3, 3)
  return {
      'affine': dense(sd.get(f'{p}.conv.modulation.weight'),
                      sd.get(f'{p}.conv.modulation.bias')),
      'kernel': conv(w),
      'noise_strength': sd.get(f'{p}.noise.weight').reshape(()),
      'bias': sd.get(f'{p}.activate.bias'),
  }


def _to_rgb(sd: StateDict, p: str) -> dict:
  return {
      'affine': dense(sd.get(f'{p}.conv.modulation.weight'),
                      sd.get(f'{p}.conv.modulation.bias')),
      'kernel': conv(sd.get(f'{p}.conv.weight')[0]),
      'bias': sd.get(f'{p}.bias').reshape(-1),
  }


def generator_arch(sd: StateDict) -> dict:
  """Resolution, latent sizes, mapping depth and widths from g / g_ema."""
  mlp = sd.indices('style.{i}.weight')
  if not mlp:
    sd.get('style.1.weight')  # raises a CheckpointError naming the file
  n_rgb = len(sd.indices('to_rgbs.{i}.conv.weight'))
  resolution = 2 ** (n_rgb + 2)
  widths = [sd.get('input.input').shape[1]]
  for j in range(n_rgb):
    widths.append(sd.get(f'convs.{2 * j}.conv.weight').shape[1])
  return dict(resolution=resolution, g_channels=tuple(widths),
              z_dim=sd.get(f'style.{mlp[0]}.weight').shape[1],
              w_dim=sd.get(f'style.{mlp[-1]}.weight').shape[0],
              mapping_hidden=sd.get(f'style.{mlp[0]}.weight').shape[0],
              n_mlp=len(mlp), lr_mul=LR_MLP)


def discriminator_arch(sd: StateDict, resolution: int) -> dict:
  """Widths and minibatch-stddev features from d."""
  n_blocks = len(resolutions(resolution)) - 1
  widths = {resolution: sd.get('convs.0.0.weight').shape[0]}
  res = resolution
  for k in range(1, n_blocks + 1):
    widths[res // 2] = sd.get(f'convs.{k}.conv2.1.weight').shape[0]
    res //= 2
  d_channels = tuple(widths[r] for r in resolutions(resolution))
  feats = sd.get('final_conv.0.weight').shape[1] - d_channels[0]
  return dict(d_channels=d_channels, mbstd_group=STDDEV_GROUP, mbstd_features=feats)


def convert_generator(sd: StateDict, cfg: StyleGAN2Config) -> dict:
  """g / g_ema state dict -> {'params': ..., 'buffers': ...} (w_avg set later)."""
  mapping = {}
  for i, idx in enumerate(sd.indices('style.{i}.weight')):
    mapping[f'fc{i}'] = dense(sd.get(f'style.{idx}.weight'), sd.get(f'style.{idx}.bias'))
  const = sd.get('input.input')[0]  # (C, 4, 4)
  synth = {'b4': {'const': np.ascontiguousarray(np.transpose(const, (1, 2, 0))),
                  'conv1': _styled_conv(sd, 'conv1'),
                  'torgb': _to_rgb(sd, 'to_rgb1')}}
  for j, res in enumerate(resolutions(cfg.resolution)[1:]):
    synth[f'b{res}'] = {'conv0': _styled_conv(sd, f'convs.{2 * j}'),
                        'conv1': _styled_conv(sd, f'convs.{2 * j + 1}'),
                        'torgb': _to_rgb(sd, f'to_rgbs.{j}')}
  noise = {}
  layers = [('b4', 'conv1')] + [(f'b{r}', c) for r in resolutions(cfg.resolution)[1:]
                                for c in ('conv0', 'conv1')]
  for i, (blk, c) in enumerate(layers):
    res = int(blk[1:])
    buf = sd.get(f'noises.noise_{i}', (1, 1, res, res))[0, 0]
    noise.setdefault(blk, {})[c] = {'noise_const': buf}
  return {'params': {'mapping': mapping, 'synthesis': synth},
          'buffers': {'synthesis': noise}}


def convert_discriminator(sd: StateDict, cfg: StyleGAN2Config) -> dict:
  """d state dict -> {'params': ...}."""
  res0 = cfg.resolution
  params = {f'b{res0}': {'fromrgb': {'kernel': conv(sd.get('convs.0.0.weight')),
                                     'bias': sd.get('convs.0.1.bias')}}}
  for k, res in enumerate(reversed(resolutions(res0)[1:]), start=1):
    b = params.setdefault(f'b{res}', {})
    b['conv0'] = {'kernel': conv(sd.get(f'convs.{k}.conv1.0.weight')),
                  'bias': sd.get(f'convs.{k}.conv1.1.bias')}
    b['conv1'] = {'kernel': conv(sd.get(f'convs.{k}.conv2.1.weight')),
                  'bias': sd.get(f'convs.{k}.conv2.2.bias')}
    b['skip'] = {'kernel': conv(sd.get(f'convs.{k}.skip.1.weight'))}
  params['b4'] = {
      'conv': {'kernel': conv(sd.get('final_conv.0.weight')),
               'bias': sd.get('final_conv.1.bias')},
      'fc': dense(sd.get('final_linear.0.weight'), sd.get('final_linear.0.bias')),
      'out': dense(sd.get('final_linear.1.weight'), sd.get('final_linear.1.bias')),
  }
  return {'params': params}


def convert(ckpt: dict, path: str) -> tuple:
  """Returns (config, nets, w_avg or None) from a loaded rosinality checkpoint."""
  nets_sd = {name: StateDict(ckpt[name], path, name)
             for name in ('g_ema', 'g', 'd') if isinstance(ckpt.get(name), dict)}
  g = nets_sd['g_ema']
  arch = generator_arch(g)
  d_sd = nets_sd.get('d')
  if d_sd is not None:
    arch.update(discriminator_arch(d_sd, arch['resolution']))
  else:
    arch['d_channels'] = arch['g_channels']  # placeholder: no D in this file
  cfg = StyleGAN2Config(**arch)
  nets = {'G_ema': convert_generator(g, cfg)}
  if 'g' in nets_sd:
    nets['G'] = convert_generator(nets_sd['g'], cfg)
  if d_sd is not None:
    nets['D'] = convert_discriminator(d_sd, cfg)
  w_avg: Optional[np.ndarray] = None
  if ckpt.get('latent_avg') is not None:
    w_avg = np.asarray(ckpt['latent_avg'], np.float32).reshape(-1)
  return cfg, nets, w_avg


# --- our parameter trees -> rosinality state dicts ------------------------------------

def _oihw(kernel) -> np.ndarray:
  """HWIO -> torch OIHW (the inverse of state.conv)."""
  return np.ascontiguousarray(np.transpose(np.asarray(kernel, np.float32), (3, 2, 0, 1)))


def _linear(p: dict, prefix: str, out: Dict[str, np.ndarray]):
  """{'kernel': (in, out), 'bias'} -> torch Linear weight (out, in) and bias."""
  out[f'{prefix}.weight'] = np.ascontiguousarray(np.asarray(p['kernel'], np.float32).T)
  out[f'{prefix}.bias'] = np.asarray(p['bias'], np.float32)


def blur_kernel(taps, factor: int = 1) -> np.ndarray:
  """rosinality model.py `make_kernel(taps)` (outer product, sum 1) times factor**2,
  the buffer of `Blur(..., upsample_factor=factor)` and `Upsample(factor)`."""
  k = np.asarray(taps, np.float32)
  k = k[None, :] * k[:, None]
  return (k / k.sum() * factor ** 2).astype(np.float32)


def _export_styled_conv(p: dict, prefix: str, kernel: Optional[np.ndarray], out: dict):
  """StyledConv: conv.weight, [conv.blur.kernel], conv.modulation, noise.weight, activate.bias."""
  out[f'{prefix}.conv.weight'] = _oihw(p['kernel'])[None]
  if kernel is not None:
    out[f'{prefix}.conv.blur.kernel'] = kernel
  _linear(p['affine'], f'{prefix}.conv.modulation', out)
  out[f'{prefix}.noise.weight'] = np.asarray(p['noise_strength'], np.float32).reshape(1)
  out[f'{prefix}.activate.bias'] = np.asarray(p['bias'], np.float32)


def _export_to_rgb(p: dict, prefix: str, kernel: Optional[np.ndarray], out: dict):
  """ToRGB: bias (1, 3, 1, 1), [upsample.kernel], conv.weight, conv.modulation."""
  out[f'{prefix}.bias'] = np.asarray(p['bias'], np.float32).reshape(1, -1, 1, 1)
  if kernel is not None:
    out[f'{prefix}.upsample.kernel'] = kernel
  out[f'{prefix}.conv.weight'] = _oihw(p['kernel'])[None]
  _linear(p['affine'], f'{prefix}.conv.modulation', out)


def generator_state_dict(net: dict, cfg: StyleGAN2Config) -> Dict[str, np.ndarray]:
  """G / G_ema variables -> rosinality `Generator.state_dict()` (names, shapes, order)."""
  params, noise = net['params'], net['buffers']['synthesis']
  out: Dict[str, np.ndarray] = {}
  for i in range(cfg.n_mlp):  # style.0 is PixelNorm
    _linear(params['mapping'][f'fc{i}'], f'style.{i + 1}', out)
  synth = params['synthesis']
  const = np.asarray(synth['b4']['const'], np.float32)  # (4, 4, C)
  out['input.input'] = np.ascontiguousarray(np.transpose(const, (2, 0, 1)))[None]
  _export_styled_conv(synth['b4']['conv1'], 'conv1', None, out)
  _export_to_rgb(synth['b4']['torgb'], 'to_rgb1', None, out)
  up = blur_kernel(cfg.resample_taps, 2)
  for j, res in enumerate(resolutions(cfg.resolution)[1:]):
    _export_styled_conv(synth[f'b{res}']['conv0'], f'convs.{2 * j}', up, out)
    _export_styled_conv(synth[f'b{res}']['conv1'], f'convs.{2 * j + 1}', None, out)
  for j, res in enumerate(resolutions(cfg.resolution)[1:]):
    _export_to_rgb(synth[f'b{res}']['torgb'], f'to_rgbs.{j}', up, out)
  layers = [('b4', 'conv1')] + [(f'b{r}', c) for r in resolutions(cfg.resolution)[1:]
                                for c in ('conv0', 'conv1')]
  for i, (blk, c) in enumerate(layers):
    out[f'noises.noise_{i}'] = np.asarray(noise[blk][c]['noise_const'], np.float32)[None, None]
  return out


def discriminator_state_dict(net: dict, cfg: StyleGAN2Config) -> Dict[str, np.ndarray]:
  """D variables -> rosinality `Discriminator.state_dict()` (names, shapes, order)."""
  params = net['params']
  res0 = cfg.resolution
  down = blur_kernel(cfg.resample_taps)
  out: Dict[str, np.ndarray] = {}
  out['convs.0.0.weight'] = _oihw(params[f'b{res0}']['fromrgb']['kernel'])
  out['convs.0.1.bias'] = np.asarray(params[f'b{res0}']['fromrgb']['bias'], np.float32)
  for k, res in enumerate(reversed(resolutions(res0)[1:]), start=1):
    b = params[f'b{res}']
    out[f'convs.{k}.conv1.0.weight'] = _oihw(b['conv0']['kernel'])
    out[f'convs.{k}.conv1.1.bias'] = np.asarray(b['conv0']['bias'], np.float32)
    out[f'convs.{k}.conv2.0.kernel'] = down
    out[f'convs.{k}.conv2.1.weight'] = _oihw(b['conv1']['kernel'])
    out[f'convs.{k}.conv2.2.bias'] = np.asarray(b['conv1']['bias'], np.float32)
    out[f'convs.{k}.skip.0.kernel'] = down
    out[f'convs.{k}.skip.1.weight'] = _oihw(b['skip']['kernel'])
  out['final_conv.0.weight'] = _oihw(params['b4']['conv']['kernel'])
  out['final_conv.1.bias'] = np.asarray(params['b4']['conv']['bias'], np.float32)
  _linear(params['b4']['fc'], 'final_linear.0', out)
  _linear(params['b4']['out'], 'final_linear.1', out)
  return out


def export_problems(cfg) -> list:
  """What keeps a model from rosinality's architecture ([] when nothing does)."""
  if not isinstance(cfg, StyleGAN2Config):
    return [f'it is a {getattr(cfg, "arch", type(cfg).__name__)} model, not a StyleGAN2']
  problems = []
  hidden = cfg.mapping_hidden or cfg.w_dim
  if not cfg.z_dim == cfg.w_dim == hidden:
    problems.append(f'z_dim, w_dim and mapping_hidden differ ({cfg.z_dim}, {cfg.w_dim}, '
                    f'{hidden}; rosinality has one style_dim)')
  checks = (('lr_mul', LR_MLP), ('mbstd_group', STDDEV_GROUP), ('mbstd_features', 1),
            ('g_conv_clamp', None), ('d_conv_clamp', None), ('resample_taps', (1., 3., 3., 1.)),
            ('img_channels', 3))
  for name, want in checks:
    if getattr(cfg, name) != want:
      problems.append(f'{name} is {getattr(cfg, name)!r} (rosinality: {want!r})')
  return problems


def channel_multiplier(cfg: StyleGAN2Config) -> Optional[int]:
  """The `--channel_multiplier` of rosinality's width table that gives cfg's widths, or None."""
  for cm in (1, 2, 4):
    if cfg.g_channels == rosinality_channels(cfg.resolution, cm) and (
        cfg.d_channels == cfg.g_channels):
      return cm
  return None


def export_checkpoint(bundle, nets=('G_ema', 'G', 'D')) -> dict:
  """A ModelBundle -> {'g_ema', 'latent_avg', 'g', 'd'} as rosinality reads it.

  `nets` lists what to include (G_ema is required); those the bundle lacks are
  left out. `latent_avg` is G_ema's w_avg (convert_weight.py stores the
  official mean w there).

  Raises:
    CheckpointError: the model is not a StyleGAN2 rosinality can build (names why).
  """
  cfg = bundle.config
  problems = export_problems(cfg)
  if problems:
    raise CheckpointError(f'{bundle.source or "this model"} cannot be exported to the rosinality '
                          f'format: {"; ".join(problems)}')
  g_ema = bundle.require('G_ema')
  out = {'g_ema': generator_state_dict(g_ema, cfg),
         'latent_avg': np.asarray(g_ema['buffers']['w_avg'], np.float32).reshape(-1)}
  if 'G' in nets and 'G' in bundle.nets:
    out['g'] = generator_state_dict(bundle.nets['G'], cfg)
  if 'D' in nets and 'D' in bundle.nets:
    out['d'] = discriminator_state_dict(bundle.nets['D'], cfg)
  return out
