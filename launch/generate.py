"""Write a sample grid PNG from any supported StyleGAN2 checkpoint.

  python launch/generate.py --checkpoint=model.pkl --out=samples.png --num=16 --truncation=0.7
"""
from absl import app, flags
import jax

import fsig_jax
from fsig_jax.utils.cli import fail
from fsig_jax.utils.images import save_grid

CKPT = flags.DEFINE_string('checkpoint', None, '.pt, .pkl or fsig-jax orbax directory',
                           required=True)
OUT = flags.DEFINE_string('out', 'samples.png', 'PNG to write')
NUM = flags.DEFINE_integer('num', 16, 'number of samples')
SEED = flags.DEFINE_integer('seed', 0, 'PRNG seed for z (and random noise)')
TRUNC = flags.DEFINE_float('truncation', 1.0, 'truncation psi towards w_avg')
NOISE = flags.DEFINE_enum('noise_mode', 'const', ['const', 'random', 'none'], 'noise inputs')
NET = flags.DEFINE_enum('net', 'G_ema', ['G_ema', 'G'], 'which generator')
BATCH = flags.DEFINE_integer('batch', 16, 'samples per forward pass')


def main(argv):
  del argv
  try:
    bundle = fsig_jax.load_pretrained(CKPT.value)
    zkey, nkey = jax.random.split(jax.random.PRNGKey(SEED.value))
    z = bundle.sample_z(zkey, NUM.value)
    imgs = [bundle.generate(z[i:i + BATCH.value], truncation=TRUNC.value,
                            noise_mode=NOISE.value, net=NET.value,
                            key=jax.random.fold_in(nkey, i))
            for i in range(0, NUM.value, BATCH.value)]
  except fsig_jax.CheckpointError as e:
    fail(str(e))
  try:
    path = save_grid(OUT.value, jax.numpy.concatenate(imgs))
  except fsig_jax.FsigError as e:  # an unwritable --out (utils.files): one line
    fail(str(e))
  print(f'wrote {path} ({NUM.value} samples, {bundle.config.resolution}px, '
        f'truncation {TRUNC.value}, seed {SEED.value})')


if __name__ == '__main__':
  app.run(main)
