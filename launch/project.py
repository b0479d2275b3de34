"""Project a real image into a StyleGAN2's W (or W+) and noise inputs
(stylegan2-ada-pytorch projector.py; fsig_jax/inversion/projector.py has the method).

  python launch/project.py --checkpoint=model.pkl --target=face.png --outdir=proj
  python launch/project.py --checkpoint=runs/cdc_sketch --target=x.png --outdir=p --w_plus
  python launch/generate.py --checkpoint=model.pkl --projected=proj/projected_w.npz --outdir=out

Writes to --outdir: projected_w.npz (w of shape (num_ws, w_dim) and the optimised
noise maps 'noise.b8.conv0', ...), proj.png (the final image, rendered with those
noise maps, which generate.py --projected reproduces), target.png (the target as
projected: center-cropped and resized to the model's resolution with LANCZOS, as
ada's run_projection does) and progress.png (target | snapshots over the run).
Progress lines with the step rate and ETA go to the log.
"""
import os

from absl import flags
import jax
import numpy as np
from PIL import Image

from fsig_jax.data.images import load_image_files
from fsig_jax.engine.export import load_model_or_workdir
from fsig_jax.errors import FsigError
from fsig_jax.inversion import projector
from fsig_jax.utils.cli import fail, run_main
from fsig_jax.utils.images import save_grid
from fsig_jax.utils.logs import quiet_logs

CKPT = flags.DEFINE_string('checkpoint', None, '.pt, .pkl, fsig-jax model directory or '
                           'training workdir', required=True)
TARGET = flags.DEFINE_string('target', None, 'the image to project (any size: it is '
                             'center-cropped and resized to the model\'s)', required=True)
OUTDIR = flags.DEFINE_string('outdir', None, 'where to write the results', required=True)
STEPS = flags.DEFINE_integer('num_steps', 1000, 'optimisation steps (ada default 1000)')
SAMPLES = flags.DEFINE_integer('w_avg_samples', 10000, 'mapped z for w_avg and w_std')
W_PLUS = flags.DEFINE_bool('w_plus', False, 'optimise one w per style input (W+)')
SEED = flags.DEFINE_integer('seed', 303, 'PRNG seed (ada default 303)')
NET = flags.DEFINE_enum('net', 'G_ema', ['G_ema', 'G'], 'which generator')
SNAPSHOTS = flags.DEFINE_integer('snapshots', 8, 'snapshots in progress.png')
LOG_EVERY = flags.DEFINE_integer('log_every', 0, 'progress line every N steps (0: 20 lines)')


def main(argv):
  del argv
  quiet_logs()
  if STEPS.value < 1 or SAMPLES.value < 2 or SNAPSHOTS.value < 1:
    fail(f'--num_steps and --snapshots must be >= 1 and --w_avg_samples >= 2, got '
         f'{STEPS.value}, {SNAPSHOTS.value} and {SAMPLES.value}')
  if not os.path.isfile(TARGET.value):
    fail(f'--target {TARGET.value} does not exist or is not a file: pass the image to project')
  try:
    bundle = load_model_or_workdir(CKPT.value)
    res = bundle.config.resolution
    target = load_image_files([TARGET.value], res, where=TARGET.value)[0]
    with Image.open(TARGET.value) as img:
      size = img.size
    if size != (res, res):
      print(f'note: the {size[0]}x{size[1]} target is center-cropped and resized to '
            f'{res}x{res} (LANCZOS), the model\'s resolution', flush=True)
    hp = projector.ProjectConfig(num_steps=STEPS.value, w_avg_samples=SAMPLES.value,
                                 w_plus=W_PLUS.value)
    n = hp.num_steps
    snaps = sorted({max(1, round(n * (i + 1) / SNAPSHOTS.value)) for i in range(SNAPSHOTS.value)})
    log_every = LOG_EVERY.value or max(1, n // 20)
    result = projector.project(bundle, target, jax.random.PRNGKey(SEED.value), hp,
                               net=NET.value, snapshot_steps=snaps, log_every=log_every)
  except (FsigError, ValueError) as e:
    fail(str(e))
  out = OUTDIR.value
  os.makedirs(out, exist_ok=True)
  save_grid(os.path.join(out, 'target.png'), target[None], ncol=1, pad=0)
  save_grid(os.path.join(out, 'proj.png'), result['image'], ncol=1, pad=0)
  latent = projector.save_latent(os.path.join(out, 'projected_w.npz'), result['w'],
                                 result['noise'])
  frames = [target[None]] + [img for _, img in result['snapshots']]
  save_grid(os.path.join(out, 'progress.png'), np.concatenate(frames), ncol=len(frames))
  dist = projector.distance(result['image'], target[None])
  print(f'wrote {latent}, proj.png, target.png and progress.png (target | steps '
        f'{", ".join(str(s) for s, _ in result["snapshots"])}) to {out}: LPIPS-VGG of '
        f'proj.png to the target {dist:.4f}')


if __name__ == '__main__':
  run_main(main)
