"""rosinality/stylegan2-pytorch checkpoints -> our parameter trees.

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
"""
from typing import Optional

import numpy as np

from fsig_jax.convert.state import StateDict, conv, dense
from fsig_jax.models.config import StyleGAN2Config, resolutions

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
