"""Makes tests/goldens/ada_32px_style_mixing.npz with NVIDIA's own code.

Run by hand (torch==2.13.0 and a checkout of NVlabs/stylegan2-ada-pytorch;
neither is needed by fsig-jax or its tests):

  python tests/goldens/make_ada_style_mixing.py --ada=PATH/stylegan2-ada-pytorch \
      --pkl=../shared/conformance/ada_32px.pkl

It rebuilds the conformance pickle's networks with ada's `training/networks.py`
(the pickle's embedded source is removed, so `legacy.load_network_pkl` cannot
be used: the architecture below is the one ../shared/conformance/README.md
states) and loads the pickle's G_ema state, read with fsig-jax's torch-free
reader. Then it follows ada's style_mixing.py (`generate_style_mix`): z of each
seed from `np.random.RandomState(seed).randn(z_dim)`, w = G.mapping(z, None),
truncation towards G.mapping.w_avg, and for every (row, col) the row's w with
the col_styles taken from the column's w, through G.synthesis(w,
noise_mode='const'). The float outputs (before ada's uint8 conversion) are saved.
"""
import argparse
import os
import sys

import numpy as np

ROWS, COLS, STYLES, PSI = (85, 100), (55, 821), (0, 1, 2, 3), 0.7


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--ada', required=True, help='checkout of NVlabs/stylegan2-ada-pytorch')
  p.add_argument('--pkl', required=True, help='../shared/conformance/ada_32px.pkl')
  p.add_argument('--out', default=os.path.join(os.path.dirname(__file__),
                                               'ada_32px_style_mixing.npz'))
  a = p.parse_args()
  import torch  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, a.ada)
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  from training import networks  # pylint: disable=g-import-not-at-top
  from fsig_jax.convert import torch_file  # pylint: disable=g-import-not-at-top

  G = networks.Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=32, img_channels=3,
                         mapping_kwargs=dict(num_layers=2),
                         synthesis_kwargs=dict(channel_base=2048, channel_max=64,
                                               num_fp16_res=0, conv_clamp=None))
  obj = torch_file.load_network_pickle(a.pkl)
  state = torch_file.module_state_dict(obj['G_ema'])
  G.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()},
                    strict=True)  # every tensor named as in ada's networks.py
  G.eval()
  seeds = sorted(set(ROWS + COLS))
  z = np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])
  with torch.no_grad():
    w = G.mapping(torch.from_numpy(z), None)
    w = G.mapping.w_avg + (w - G.mapping.w_avg) * PSI
    w_of = dict(zip(seeds, w))
    plain = G.synthesis(w, noise_mode='const').numpy()
    mixed = []
    for r in ROWS:
      for c in COLS:
        m = w_of[r].clone()
        m[list(STYLES)] = w_of[c][list(STYLES)]
        mixed.append(G.synthesis(m[None], noise_mode='const')[0].numpy())
  np.savez_compressed(a.out, seeds=np.array(seeds), rows=np.array(ROWS), cols=np.array(COLS),
                      styles=np.array(STYLES), psi=np.float32(PSI),
                      z=z.astype(np.float32), w=w.numpy(), img=plain, img_mix=np.stack(mixed))
  print(f'wrote {a.out}: {len(seeds)} seeds, {len(mixed)} mixes; torch {torch.__version__}')


if __name__ == '__main__':
  main()
