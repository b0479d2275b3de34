"""Make the quickstart's 10-shot target: pencil sketches of a model's own samples.

  python launch/make_targets.py --checkpoint=models/anime64 --out=data/anime64_sketch10

Writes NUM PNGs (XDoG sketches, fsig_jax.data.sketch, of G_ema samples with
z from PRNGKey(SEED), constant noise, no truncation) and a PROVENANCE.txt
naming the model, seed and command. The committed data/anime64_sketch10 was
made by exactly this command from the shipped models/anime64.
"""
import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fsig_jax  # noqa: E402  pylint: disable=g-import-not-at-top
from fsig_jax.data.images import write_image_folder  # noqa: E402
from fsig_jax.data.targets import model_sketches  # noqa: E402
from fsig_jax.utils.cli import fail, run_main  # noqa: E402
from fsig_jax.utils.files import write_text  # noqa: E402

CKPT = flags.DEFINE_string('checkpoint', 'models/anime64', 'source model (any format)')
OUT = flags.DEFINE_string('out', 'data/anime64_sketch10', 'folder to write')
NUM = flags.DEFINE_integer('num', 10, 'number of target images')
SEED = flags.DEFINE_integer('seed', 2026, 'PRNG seed of the latents')


def main(argv):
  del argv
  if NUM.value < 1:
    fail(f'--num must be >= 1, got {NUM.value}')
  if not os.path.exists(CKPT.value):
    fail(f'--checkpoint {CKPT.value!r} does not exist (the shipped model is models/anime64; '
         'any .pt, .pkl or fsig-jax checkpoint works)')
  try:
    bundle = fsig_jax.load_pretrained(CKPT.value)
  except fsig_jax.CheckpointError as e:
    fail(str(e))
  sketches = model_sketches(bundle, NUM.value, SEED.value)
  paths = write_image_folder(sketches, OUT.value, prefix='sketch_')
  write_text(os.path.join(OUT.value, 'PROVENANCE.txt'), (
      f'XDoG pencil sketches (fsig_jax.data.sketch defaults) of {NUM.value} G_ema samples '
      f'of {CKPT.value}\nz ~ N(0, I) from PRNGKey({SEED.value}), constant noise, '
      f'no truncation.\nMade with: python launch/make_targets.py '
      f'--checkpoint={CKPT.value} --out={OUT.value} --num={NUM.value} '
      f'--seed={SEED.value}\n'), setting='--out')
  print(f'wrote {len(paths)} sketches of {CKPT.value} samples to {OUT.value}')


if __name__ == '__main__':
  run_main(main)
