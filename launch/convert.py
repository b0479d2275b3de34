"""Convert an official StyleGAN2 checkpoint into an fsig-jax orbax checkpoint.

  python launch/convert.py --input=550000.pt --output=ckpts/ffhq256
  python launch/convert.py --input=network-snapshot.pkl --output=ckpts/afhqcat

Reads rosinality `.pt` and stylegan2-ada-pytorch `.pkl` without PyTorch and
without running any code stored in the pickle.
"""
from absl import flags

import fsig_jax
from fsig_jax.utils.cli import fail, run_main

INPUT = flags.DEFINE_string('input', None, 'rosinality .pt or stylegan2-ada .pkl', required=True)
OUTPUT = flags.DEFINE_string('output', None, 'orbax checkpoint directory to write', required=True)
OVERWRITE = flags.DEFINE_bool('overwrite', False, 'replace --output if it exists')
REQUIRE_D = flags.DEFINE_bool('require_discriminator', False,
                              'fail if the checkpoint has no discriminator')


def main(argv):
  del argv
  try:
    bundle = fsig_jax.load_pretrained(INPUT.value, require_discriminator=REQUIRE_D.value)
    path = fsig_jax.save_bundle(bundle, OUTPUT.value, overwrite=OVERWRITE.value)
  except (fsig_jax.CheckpointError, FileExistsError) as e:
    fail(str(e))
  cfg = bundle.config
  print(f'wrote {path}: {cfg.resolution}px StyleGAN2, nets {sorted(bundle.nets)}, '
        f'G widths {cfg.g_channels}, z/w {cfg.z_dim}/{cfg.w_dim}, n_mlp {cfg.n_mlp}')


if __name__ == '__main__':
  run_main(main)
