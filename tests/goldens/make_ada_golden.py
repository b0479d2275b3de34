"""Makes tests/goldens/ada_augment_cdc.npz with the non_leaking.py CDC trained with.

Run by hand (torch; neither torch nor this script is needed by fsig-jax or its tests):

  python tests/goldens/make_ada_golden.py --non_leaking=PATH/non_leaking.py

PATH is a checkout of utkarshojha/few-shot-gan-adaptation (snapshot 5617920;
its train.py:37 imports that file's `augment`). non_leaking.py imports
`op.upfirdn2d`, whose module compiles a CUDA extension at import, so an `op`
module with rosinality's pure-torch reference `upfirdn2d_native` (CDC's
op/upfirdn2d.py, the function its CPU path calls) stands in for it here.

Stored (NCHW as torch; the test transposes): one fixed input batch (4 images,
24x32, so that x and y cannot be swapped unnoticed) and, for each of three
matrix sets, G (4, 3, 3), C (4, 4, 4), the padding `get_padding(inverse(G))`
and `augment(x, p, (G, C))`; for the mixed set also `random_apply_affine`
alone. Sets: identities; a mixed batch (identity, x-flip, rotation by 90
degrees, a p = 1 draw, so the padding is the draw's); a p = 0.5 draw.
"""
import argparse
import importlib.util
import os
import sys
import types

import numpy as np
import torch
from torch.nn import functional as F

H, W, B = 24, 32, 4
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ada_augment_cdc.npz')


def upfirdn2d_native(input, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0,
                     pad_y1):
  """CDC op/upfirdn2d.py `upfirdn2d_native`, as written there."""
  _, channel, in_h, in_w = input.shape
  input = input.reshape(-1, in_h, in_w, 1)
  _, in_h, in_w, minor = input.shape
  kernel_h, kernel_w = kernel.shape
  out = input.view(-1, in_h, 1, in_w, 1, minor)
  out = F.pad(out, [0, 0, 0, up_x - 1, 0, 0, 0, up_y - 1])
  out = out.view(-1, in_h * up_y, in_w * up_x, minor)
  out = F.pad(out, [0, 0, max(pad_x0, 0), max(pad_x1, 0), max(pad_y0, 0), max(pad_y1, 0)])
  out = out[:, max(-pad_y0, 0): out.shape[1] - max(-pad_y1, 0),
            max(-pad_x0, 0): out.shape[2] - max(-pad_x1, 0), :]
  out = out.permute(0, 3, 1, 2)
  out = out.reshape([-1, 1, in_h * up_y + pad_y0 + pad_y1, in_w * up_x + pad_x0 + pad_x1])
  w = torch.flip(kernel, [0, 1]).view(1, 1, kernel_h, kernel_w)
  out = F.conv2d(out, w)
  out = out.reshape(-1, minor, in_h * up_y + pad_y0 + pad_y1 - kernel_h + 1,
                    in_w * up_x + pad_x0 + pad_x1 - kernel_w + 1)
  out = out.permute(0, 2, 3, 1)
  out = out[:, ::down_y, ::down_x, :]
  out_h = (in_h * up_y + pad_y0 + pad_y1 - kernel_h) // down_y + 1
  out_w = (in_w * up_x + pad_x0 + pad_x1 - kernel_w) // down_x + 1
  return out.view(-1, channel, out_h, out_w)


def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
  return upfirdn2d_native(input, kernel, up, up, down, down, pad[0], pad[1], pad[0], pad[1])


def load(path):
  op = types.ModuleType('op')
  op.upfirdn2d = upfirdn2d
  sys.modules['op'] = op
  spec = importlib.util.spec_from_file_location('non_leaking', path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def fitting_draw(nl, p, min_pad=0):
  """A p-draw whose padding fits (as try_sample_affine_and_pad needs), each side at
  least min_pad, and whose
  pre-ceil padding values are not within 1e-3 of an integer (float32 inverses
  of torch and JAX may round differently there)."""
  while True:
    g = nl.sample_affine(p, B, H, W)
    inv = torch.inverse(g)
    extreme = inv[:, :2, :] @ torch.tensor([(-1.0, -1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, 1)]).t()
    size = torch.tensor((W, H))
    vals = torch.cat([((extreme.min(-1).values + 1) * size).clamp(max=0).abs(),
                      (extreme.max(-1).values * size - size).clamp(min=0)])
    frac = (vals - vals.round()).abs()
    pads = nl.get_padding(inv, H, W)
    limit = (W, W, H, H)
    if all(min_pad <= q and q + 6 < s for q, s in zip(pads, limit)) and bool(((frac > 1e-3) | (vals == 0)).all()):
      return g


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--non_leaking', required=True, help="CDC's non_leaking.py")
  ap.add_argument('--out', default=OUT)
  args = ap.parse_args()
  nl = load(args.non_leaking)
  torch.manual_seed(0)
  # Smooth content plus noise: exercises the filters and the interpolation.
  yy, xx = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing='ij')
  smooth = torch.stack([torch.sin(3 * xx + yy), torch.cos(2 * yy - xx), xx * yy])
  x = (0.6 * smooth.unsqueeze(0) + 0.4 * (torch.rand(B, 3, H, W) * 2 - 1)).float()

  eye3, eye4 = torch.eye(3).repeat(B, 1, 1), torch.eye(4).repeat(B, 1, 1)
  draw = fitting_draw(nl, 1.0, min_pad=2)  # sets the mixed batch's padding
  mixed = torch.stack([torch.eye(3), nl.scale_mat(torch.tensor([-1.0]), torch.ones(1))[0],
                       nl.rotate_mat(torch.tensor([-np.pi / 2]))[0], draw[3]])
  sets = {'identity': (eye3, eye4),
          'mixed': (mixed, nl.sample_color(1.0, B)),
          'half': (fitting_draw(nl, 0.5), nl.sample_color(0.5, B))}
  out = {'x': x.numpy()}
  for name, (g, c) in sets.items():
    y, _ = nl.augment(x, 0.0, (g, c))
    out[f'{name}_G'] = g.numpy()
    out[f'{name}_C'] = c.numpy()
    out[f'{name}_pads'] = np.asarray(nl.get_padding(torch.inverse(g), H, W), np.int32)
    out[f'{name}_out'] = y.numpy()
  out['mixed_affine'] = nl.random_apply_affine(x, 0.0, sets['mixed'][0])[0].numpy()
  np.savez_compressed(args.out, **out)
  print('wrote', args.out, {k: v.shape for k, v in out.items()})


if __name__ == '__main__':
  main()
