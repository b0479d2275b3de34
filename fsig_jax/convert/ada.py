"""NVlabs/stylegan2-ada-pytorch network pickles -> our parameter trees.

The pickle's persistent modules are read as plain state (never executed; see
`safe_unpickle`). Names (training/networks.py):

  mapping.fc{i}.{weight,bias}, mapping.w_avg
  synthesis.b4.const; synthesis.b{res}.{conv0,conv1}.{affine.*, weight,
      noise_strength, bias, noise_const}; synthesis.b{res}.torgb.{affine.*, weight, bias}
  D: b{res}.{fromrgb, conv0, conv1, skip}, b4.{conv, fc, out}, b4.mbstd

Settings that tensors cannot show (lr multiplier, conv clamp, minibatch-stddev
group, D architecture) are read from the modules' saved attributes.
"""
from typing import Any, Dict

import numpy as np

from fsig_jax.convert.state import StateDict, conv, dense
from fsig_jax.convert.torch_file import module_attributes, module_state_dict
from fsig_jax.errors import CheckpointError
from fsig_jax.models.config import StyleGAN2Config, resolutions
from fsig_jax.nn.upfirdn import setup_filter


def _fc(sd: StateDict, p: str) -> dict:
  return dense(sd.get(f'{p}.weight'), sd.get(f'{p}.bias'))


def _synthesis_layer(sd: StateDict, p: str) -> dict:
  return {'affine': _fc(sd, f'{p}.affine'), 'kernel': conv(sd.get(f'{p}.weight')),
          'noise_strength': sd.get(f'{p}.noise_strength').reshape(()),
          'bias': sd.get(f'{p}.bias')}


def _conv_layer(sd: StateDict, p: str, bias: bool = True) -> dict:
  out = {'kernel': conv(sd.get(f'{p}.weight'))}
  if bias:
    out['bias'] = sd.get(f'{p}.bias')
  return out


def _attr(attrs: Dict[str, Any], key: str, default=None):
  v = attrs.get(key, default)
  return v.item() if isinstance(v, np.generic) else v


def _check_filter(sd: StateDict, key: str, path: str):
  if key in sd:
    f = sd.get(key)
    if f.shape != (4, 4) or not np.allclose(f, setup_filter((1, 3, 3, 1)), atol=1e-6):
      raise CheckpointError(f'{path}: {key} is not the [1,3,3,1] filter StyleGAN2 uses; '
                            'custom resample filters are not supported')


def generator_arch(sd: StateDict, attrs: Dict[str, Any], path: str) -> dict:
  fcs = sd.indices('mapping.fc{i}.weight')
  if not fcs:
    sd.get('mapping.fc0.weight')  # raises a CheckpointError naming the file
  if 'mapping.embed.weight' in sd:
    raise CheckpointError(f'{path}: the generator is class-conditional (mapping.embed); '
                          'fsig-jax supports unconditional StyleGAN2 only')
  blocks = sorted(int(k.split('.')[1][1:]) for k in sd.tensors
                  if k.startswith('synthesis.b') and k.endswith('.torgb.weight'))
  resolution = blocks[-1]
  widths = [sd.get('synthesis.b4.const').shape[0]]
  widths += [sd.get(f'synthesis.b{r}.conv0.weight').shape[0] for r in blocks[1:]]
  fc0 = sd.get('mapping.fc0.weight')
  lr_mul = _attr(attrs, 'mapping.fc0.bias_gain', _attr(attrs, 'mapping.lr_multiplier', 0.01))
  _check_filter(sd, 'synthesis.b8.resample_filter', path)
  return dict(resolution=resolution, g_channels=tuple(widths), z_dim=fc0.shape[1],
              w_dim=sd.get(f'mapping.fc{fcs[-1]}.weight').shape[0],
              mapping_hidden=fc0.shape[0], n_mlp=len(fcs), lr_mul=float(lr_mul),
              g_conv_clamp=_attr(attrs, 'synthesis.b4.conv1.conv_clamp'))


def discriminator_arch(sd: StateDict, attrs: Dict[str, Any], resolution: int,
                       path: str) -> dict:
  arch = _attr(attrs, f'b{resolution}.architecture', 'resnet')
  if arch != 'resnet':
    raise CheckpointError(f'{path}: discriminator architecture is {arch!r}; fsig-jax '
                          'implements the StyleGAN2 resnet discriminator only')
  if _attr(attrs, 'b4.cmap_dim', 0) or 'mapping.fc0.weight' in sd:
    raise CheckpointError(f'{path}: the discriminator is class-conditional; '
                          'fsig-jax supports unconditional StyleGAN2 only')
  widths = {resolution: sd.get(f'b{resolution}.fromrgb.weight').shape[0]}
  for r in reversed(resolutions(resolution)[1:]):
    widths[r // 2] = sd.get(f'b{r}.conv1.weight').shape[0]
  d_channels = tuple(widths[r] for r in resolutions(resolution))
  feats = sd.get('b4.conv.weight').shape[1] - d_channels[0]
  group = _attr(attrs, 'b4.mbstd.group_size', 4)
  return dict(d_channels=d_channels, mbstd_features=feats,
              mbstd_group=int(group) if group else 0,
              d_conv_clamp=_attr(attrs, f'b{resolution}.conv0.conv_clamp'))


def convert_generator(sd: StateDict, cfg: StyleGAN2Config) -> dict:
  mapping = {f'fc{i}': _fc(sd, f'mapping.fc{i}') for i in range(cfg.n_mlp)}
  synth, noise = {}, {}
  for res in resolutions(cfg.resolution):
    p = f'synthesis.b{res}'
    blk = {'torgb': {'affine': _fc(sd, f'{p}.torgb.affine'),
                     'kernel': conv(sd.get(f'{p}.torgb.weight')),
                     'bias': sd.get(f'{p}.torgb.bias')}}
    names = ['conv1'] if res == 4 else ['conv0', 'conv1']
    if res == 4:
      blk['const'] = np.ascontiguousarray(np.transpose(sd.get(f'{p}.const'), (1, 2, 0)))
    for c in names:
      blk[c] = _synthesis_layer(sd, f'{p}.{c}')
      noise.setdefault(f'b{res}', {})[c] = {
          'noise_const': sd.get(f'{p}.{c}.noise_const', (res, res))}
    synth[f'b{res}'] = blk
  return {'params': {'mapping': mapping, 'synthesis': synth},
          'buffers': {'synthesis': noise,
                      'w_avg': sd.get('mapping.w_avg', (cfg.w_dim,))}}


def convert_discriminator(sd: StateDict, cfg: StyleGAN2Config) -> dict:
  params = {}
  for res in reversed(resolutions(cfg.resolution)[1:]):
    p = f'b{res}'
    blk = {'conv0': _conv_layer(sd, f'{p}.conv0'), 'conv1': _conv_layer(sd, f'{p}.conv1'),
           'skip': _conv_layer(sd, f'{p}.skip', bias=False)}
    if res == cfg.resolution:
      blk['fromrgb'] = _conv_layer(sd, f'{p}.fromrgb')
    params[p] = blk
  params['b4'] = {'conv': _conv_layer(sd, 'b4.conv'), 'fc': _fc(sd, 'b4.fc'),
                  'out': _fc(sd, 'b4.out')}
  return {'params': params}


def convert(pkl: dict, path: str) -> tuple:
  """Returns (config, nets, w_avg) from a loaded ada network pickle."""
  g_obj = pkl.get('G_ema') if pkl.get('G_ema') is not None else pkl.get('G')
  if g_obj is None:
    raise CheckpointError(f'{path}: network pickle has neither G_ema nor G '
                          f'(keys: {sorted(pkl)})')
  g = StateDict(module_state_dict(g_obj), path, 'G_ema')
  arch = generator_arch(g, module_attributes(g_obj), path)
  d_obj = pkl.get('D')
  d = None
  if d_obj is not None:
    d = StateDict(module_state_dict(d_obj), path, 'D')
    arch.update(discriminator_arch(d, module_attributes(d_obj), arch['resolution'], path))
  else:
    arch['d_channels'] = arch['g_channels']  # placeholder: no D in this file
  cfg = StyleGAN2Config(**arch)
  nets = {'G_ema': convert_generator(g, cfg)}
  if pkl.get('G') is not None and pkl.get('G_ema') is not None:
    nets['G'] = convert_generator(
        StateDict(module_state_dict(pkl['G']), path, 'G'), cfg)
  if d is not None:
    nets['D'] = convert_discriminator(d, cfg)
  return cfg, nets, nets['G_ema']['buffers']['w_avg']
