"""Images from any supported StyleGAN2 checkpoint (or training workdir): a sample grid,
images of seeds, a style-mixing figure, or the render of a projected latent.

  # a grid of --num samples from PRNG seed --seed
  python launch/generate.py --checkpoint=model.pkl --out=samples.png --num=16 --truncation=0.7
  # one PNG per seed, OUTDIR/seed0000.png, ... (stylegan2-ada-pytorch generate.py's seeds)
  python launch/generate.py --checkpoint=model.pkl --seeds=0-63 --outdir=out
  # a style-mixing figure (ada style_mixing.py): OUTDIR/grid.png and every cell ROW-COL.png
  python launch/generate.py --checkpoint=model.pkl --rows=85,100 --cols=55,821 --styles=0-6 \\
      --outdir=mix
  # the image of a latent written by launch/project.py: OUTDIR/proj00.png
  python launch/generate.py --checkpoint=model.pkl --projected=proj/projected_w.npz --outdir=out

Seeds follow stylegan2-ada-pytorch generate.py (lines 113-115): the latent of seed s
is np.random.RandomState(s).randn(1, z_dim), so a converted ada .pkl gives the
official script's images for the same --seeds, --truncation and --noise_mode
(const by default, as there). Seeds are lists and ranges: 0-63, 0,5,10-12.
Without --outdir, the images of --seeds, --rows/--cols or --projected go into one
grid at --out.

Style mixing is a mode of this launcher rather than a launcher of its own: it
loads the same models, parses the same seeds and takes the same --truncation,
--noise_mode and --net as the other modes, and writes images the same way. As in
ada style_mixing.py (lines 71-90), every seed's w is mapped and truncated, and
the cell (row, col) is the row's w with the style inputs --styles replaced by the
column's. The grid has the column seeds' images on the top row, the row seeds'
down the left column and the mixes in the body (top-left blank).
"""
import os

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from fsig_jax.engine.export import load_model_or_workdir
from fsig_jax.errors import FsigError
from fsig_jax.utils.cli import fail, parse_seeds, run_main
from fsig_jax.utils.images import save_grid, to_uint8
from fsig_jax.utils.logs import quiet_logs

CKPT = flags.DEFINE_string('checkpoint', None, '.pt, .pkl, fsig-jax model directory or '
                           'training workdir', required=True)
OUT = flags.DEFINE_string('out', 'samples.png', 'the grid PNG to write (without --outdir)')
OUTDIR = flags.DEFINE_string('outdir', None, 'write one PNG per image here instead of a grid '
                             '(seed0000.png, ROW-COL.png + grid.png, proj00.png)')
NUM = flags.DEFINE_integer('num', 16, 'number of samples (grid mode)')
SEED = flags.DEFINE_integer('seed', 0, 'PRNG seed for z in grid mode (and random noise)')
SEEDS = flags.DEFINE_string('seeds', None, 'ada seeds, e.g. 0-63 or 0,5,10-12: one image each')
ROWS = flags.DEFINE_string('rows', None, 'style mixing: seeds of the rows (their coarse '
                           'styles are replaced)')
COLS = flags.DEFINE_string('cols', None, 'style mixing: seeds of the columns (they give '
                           '--styles)')
STYLES = flags.DEFINE_string('styles', '0-6', 'style mixing: the style inputs taken from '
                             'the column seed (ada default 0-6)')
PROJECTED = flags.DEFINE_string('projected', None, 'a latent .npz from launch/project.py '
                                '(or ada projector.py) to render')
TRUNC = flags.DEFINE_float('truncation', 1.0, 'truncation psi towards w_avg')
NOISE = flags.DEFINE_enum('noise_mode', 'const', ['const', 'random', 'none'], 'noise inputs')
NET = flags.DEFINE_enum('net', 'G_ema', ['G_ema', 'G'], 'which generator')
BATCH = flags.DEFINE_integer('batch', 16, 'samples per forward pass')


def _batched(fn, n: int, key):
  """fn(slice, key) over [0, n) in --batch chunks, concatenated."""
  return jnp.concatenate([fn(slice(i, i + BATCH.value), jax.random.fold_in(key, i))
                          for i in range(0, n, BATCH.value)])


def _write(images, names, what: str):
  """One PNG per image in --outdir (names), else one grid at --out."""
  if OUTDIR.value:
    for img, name in zip(to_uint8(images), names):
      save_grid(os.path.join(OUTDIR.value, name), img[None], ncol=1, pad=0)
    print(f'wrote {len(names)} PNGs to {OUTDIR.value} ({what})')
  else:
    path = save_grid(OUT.value, images)
    print(f'wrote {path} ({what})')


def _grid(bundle, key):
  z = bundle.sample_z(jax.random.split(key)[0], NUM.value)
  return _batched(lambda s, k: bundle.generate(
      z[s], truncation=TRUNC.value, noise_mode=NOISE.value, net=NET.value, key=k),
      NUM.value, jax.random.split(key)[1])


def _seeds(bundle, key, seeds):
  z = bundle.seed_z(seeds)
  imgs = _batched(lambda s, k: bundle.generate(
      z[s], truncation=TRUNC.value, noise_mode=NOISE.value, net=NET.value, key=k),
      len(seeds), key)
  _write(imgs, [f'seed{s:04d}.png' for s in seeds], f'{len(seeds)} seeds, '
         f'{bundle.config.resolution}px, truncation {TRUNC.value}, noise {NOISE.value}')


def _style_mixing(bundle, key, rows, cols, styles):
  num_ws = bundle.config.num_ws
  if max(styles) >= num_ws:
    fail(f'--styles={STYLES.value}: this {bundle.config.resolution}px model has style inputs '
         f'0-{num_ws - 1}; pass styles in that range')
  seeds = sorted(set(rows + cols))
  ws = dict(zip(seeds, np.asarray(bundle.map(bundle.seed_z(seeds), truncation=TRUNC.value,
                                             net=NET.value))))
  take = np.zeros(num_ws, bool)
  take[styles] = True
  cells = [(r, c) for r in rows for c in cols]
  mixed = np.stack([np.where(take[:, None], ws[c], ws[r]) for r, c in cells])
  all_ws = np.concatenate([np.stack([ws[s] for s in seeds]), mixed])
  synth = lambda s, k: bundle.synthesize(  # noqa: E731
      all_ws[s], noise_mode=NOISE.value, net=NET.value, key=k)
  imgs = dict(zip([(s, s) for s in seeds] + cells, _batched(synth, len(all_ws), key)))
  blank = jnp.full_like(imgs[(rows[0], rows[0])], 1.0)  # white, as the grid's padding
  grid = [blank] + [imgs[(c, c)] for c in cols]
  for r in rows:
    grid += [imgs[(r, r)]] + [imgs[(r, c)] for c in cols]
  what = (f'style mixing: {len(rows)} rows x {len(cols)} columns, styles {STYLES.value} '
          f'from the columns, truncation {TRUNC.value}')
  if OUTDIR.value:
    keys = list(imgs)
    _write(jnp.stack([imgs[k] for k in keys]), [f'{r}-{c}.png' for r, c in keys], what)
    print(f'wrote {save_grid(os.path.join(OUTDIR.value, "grid.png"), jnp.stack(grid), ncol=len(cols) + 1)}')
  else:
    print(f'wrote {save_grid(OUT.value, jnp.stack(grid), ncol=len(cols) + 1)} ({what})')


def _projected(bundle, key):
  from fsig_jax.inversion import projector  # pylint: disable=g-import-not-at-top
  ws, noise = projector.load_latent(PROJECTED.value, bundle, NET.value)
  imgs = _batched(lambda s, k: projector.render(
      bundle, ws[s], noise, NET.value, noise_mode=NOISE.value), len(ws), key)
  _write(imgs, [f'proj{i:02d}.png' for i in range(len(ws))],
         f'{len(ws)} projected latent(s) of {PROJECTED.value}, '
         f'{"its own noise maps" if noise else "noise " + NOISE.value}')


def main(argv):
  del argv
  modes = [name for name, flag in (('--seeds', SEEDS), ('--rows/--cols', ROWS),
                                   ('--rows/--cols', COLS), ('--projected', PROJECTED))
           if flag.value is not None]
  if len(set(modes)) > 1:
    fail(f'pass one of --seeds, --rows/--cols or --projected, not {" and ".join(sorted(set(modes)))}')
  if NUM.value < 1 or BATCH.value < 1:
    fail(f'--num and --batch must be positive, got --num={NUM.value} --batch={BATCH.value}')
  if modes and flags.FLAGS['num'].present:
    fail(f'--num is for the sample grid; {modes[0]} says which images to make')
  quiet_logs()
  key = jax.random.PRNGKey(SEED.value)
  try:
    if modes and modes[0] == '--rows/--cols':
      if not (ROWS.value and COLS.value):
        fail('style mixing needs both --rows=SEEDS and --cols=SEEDS, e.g. --rows=85,100 '
             '--cols=55,821')
      mixing = (parse_seeds(ROWS.value, '--rows'), parse_seeds(COLS.value, '--cols'),
                parse_seeds(STYLES.value, '--styles'))
    seeds = parse_seeds(SEEDS.value) if SEEDS.value is not None else None
    bundle = load_model_or_workdir(CKPT.value)
    if not modes:
      imgs = _grid(bundle, key)
      path = save_grid(OUT.value, imgs)
      print(f'wrote {path} ({NUM.value} samples, {bundle.config.resolution}px, '
            f'truncation {TRUNC.value}, seed {SEED.value})')
    elif modes[0] == '--seeds':
      _seeds(bundle, key, seeds)
    elif modes[0] == '--projected':
      _projected(bundle, key)
    else:
      _style_mixing(bundle, key, *mixing)
  except (FsigError, ValueError) as e:
    fail(str(e))


if __name__ == '__main__':
  run_main(main)
