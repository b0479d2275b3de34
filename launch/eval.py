"""Evaluate a trained model: FID-VGG / KID-VGG (or FID / KID) and intra-LPIPS, plus a grid.

  python launch/eval.py --workdir=runs/cdc_sketch                # newest model/checkpoint
  python launch/eval.py --workdir=runs/pretrain_anime64 --step=5000 --num_samples=2000
  python launch/eval.py --checkpoint=model.pkl --reference=data/test --few_shot=data/10shot
  python launch/eval.py --checkpoint=model.pkl --reference=data/babies_test --metrics=fid,kid \
      --inception_weights=pt_inception-2015-12-05-6726825d.pth --num_samples=5000

Writes WORKDIR/eval/metrics_step{N}.json (or --out) and a PNG grid of the first
evaluated samples beside it. With --workdir the data default to the run's
config (config.eval, else from config.data.source): a derived target
'derived:NAME:train10' is compared with its 2,000-image test set
'derived:NAME:test' and is the intra-LPIPS set; a real 10-shot folder has no
test set, so FID-VGG is against its 10 images (the JSON says which, in
'reference_kind'). FID-VGG uses VGG16 features and is not comparable with
published (Inception) FIDs; with --inception_weights (pytorch-fid's weights
file, read without torch; default config.eval.inception_weights) the numbers
are standard FID / KID on Inception-v3 (pool3), as pytorch-fid computes them.
A running training workdir can be evaluated at any
time (the newest finished checkpoint is read; nothing in the workdir but eval/
is written).
"""
import json
import os

from absl import flags
import numpy as np

from fsig_jax.convert.load import load_pretrained
from fsig_jax.engine import export
from fsig_jax.errors import FsigError
from fsig_jax.metrics import evaluate
from fsig_jax.utils.cli import fail, run_main
from fsig_jax.utils.files import check_writable, write_text
from fsig_jax.utils.images import save_grid
from fsig_jax.utils.logs import quiet_logs

WORKDIR = flags.DEFINE_string('workdir', None, 'a training workdir (finished or running)')
CKPT = flags.DEFINE_string('checkpoint', None, 'a .pt / .pkl / fsig-jax model directory '
                           '(or a workdir)')
STEP = flags.DEFINE_integer('step', None, 'with --workdir: the checkpoint step (default newest)')
REFERENCE = flags.DEFINE_string('reference', 'auto', 'FID-VGG/KID-VGG reference: image folder, '
                                'derived:NAME:test, tfds:NAME[:SPLIT] or a statistics .npz; '
                                "'auto': from the run's config; '' none (then the few-shot "
                                'images are the reference)')
FEW_SHOT = flags.DEFINE_string('few_shot', 'auto', 'the few-shot training images (intra-LPIPS '
                               "centers): folder or derived:NAME:train10; 'auto': from the "
                               "run's config; '' none")
NUM = flags.DEFINE_integer('num_samples', None, 'generated samples (default: config.eval.'
                           f'num_samples, else {evaluate.DEFAULT_NUM_SAMPLES})')
SEED = flags.DEFINE_integer('seed', 0, 'seeds latents and noise (same seed, same latents)')
METRICS = flags.DEFINE_string('metrics', 'auto', 'comma-separated fid,kid,intra_lpips (fid_vgg, '
                              "kid_vgg name the VGG16 ones); 'auto': all the data allows")
INCEPTION = flags.DEFINE_string('inception_weights', None, "pytorch-fid's pt_inception-2015-12-"
                                '05-*.pth (or .npz): FID/KID on Inception-v3, comparable with '
                                "papers (default: config.eval.inception_weights; '': VGG16)")
OUT = flags.DEFINE_string('out', None, 'metrics JSON (default WORKDIR/eval/metrics_step{N}.json, '
                          'or eval/metrics_{name}.json for --checkpoint)')
GRID = flags.DEFINE_integer('grid', 32, 'samples in the PNG grid written beside the JSON (0: none)')
CACHE = flags.DEFINE_string('cache_dir', None, 'reference feature cache (default: cache/ beside '
                            'the JSON)')
BATCH = flags.DEFINE_integer('batch_size', 32, 'images per generator / feature-network call')


def _load_model():
  """(bundle, run config dict or {}, step or None, default output path)."""
  path = WORKDIR.value or CKPT.value
  if bool(WORKDIR.value) == bool(CKPT.value):
    fail('pass exactly one of --workdir=DIR (a training run) or --checkpoint=PATH (a model)')
  if WORKDIR.value or export.is_workdir(path):
    bundle, step = export.bundle_from_workdir(path, STEP.value)
    out = os.path.join(path, 'eval', f'metrics_step{step}.json')
    return bundle, export.read_run_config(path), step, out
  if STEP.value is not None:
    fail('--step needs --workdir (a model file has no steps)')
  if REFERENCE.value == 'auto' and FEW_SHOT.value == 'auto':
    fail('--checkpoint needs --reference=IMAGES (FID, KID) and/or --few_shot=IMAGES '
         '(intra-LPIPS): a model file does not say what it was trained on')
  if not os.path.exists(path):
    fail(f'--checkpoint {path} does not exist')
  bundle = load_pretrained(path)
  name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
  return bundle, {}, None, os.path.join('eval', f'metrics_{name}.json')


def _sources(cfg: dict):
  """(reference, few_shot): the flags, else config.eval, else derived from config.data.source."""
  e = cfg.get('eval') or {}
  reference, few_shot = REFERENCE.value, FEW_SHOT.value
  if reference == 'auto':
    reference = e.get('reference', 'auto') if cfg else ''
  if few_shot == 'auto':
    few_shot = e.get('few_shot', 'auto') if cfg else ''
  data = (cfg.get('data') or {}).get('source', '')
  return evaluate.default_sources(data, reference, few_shot)


def main(argv):
  del argv
  quiet_logs()
  try:
    bundle, cfg, step, out = _load_model()
    reference, few_shot = _sources(cfg)
    num = NUM.value or int((cfg.get('eval') or {}).get('num_samples',
                                                        evaluate.DEFAULT_NUM_SAMPLES))
    out = OUT.value or out
    check_writable(os.path.dirname(os.path.abspath(out)), '--out')  # before minutes of work
    cache = CACHE.value if CACHE.value is not None else os.path.join(
        os.path.dirname(os.path.abspath(out)), 'cache')
    res = bundle.config.resolution
    ref_src = evaluate.as_source(reference, res)
    few_src = evaluate.as_source(few_shot, res)
    weights = INCEPTION.value
    if weights is None:
      weights = (cfg.get('eval') or {}).get('inception_weights', '')
    extractor = evaluate.feature_extractor(weights)
    print(f'evaluating {bundle.source}: {num} samples at {res}px (seed {SEED.value}, '
          f'features {extractor.name})', flush=True)
    result = evaluate.evaluate(bundle, reference=ref_src, few_shot=few_src, num_samples=num,
                               seed=SEED.value, metrics=METRICS.value, cache_dir=cache or None,
                               batch_size=BATCH.value, extractor=extractor)
  except (FsigError, ValueError) as err:
    fail(str(err))
  result = {'step': step, 'workdir': WORKDIR.value, 'checkpoint': CKPT.value, **result}
  try:  # an unwritable --out (read-only folder, full disk): one line (utils.files)
    if GRID.value > 0:
      n = min(GRID.value, num)
      z = evaluate.sample_latents(bundle, n, SEED.value)
      grid = os.path.splitext(out)[0] + '.png'
      imgs = evaluate.generate_samples(bundle, z, SEED.value, BATCH.value)
      result['grid'] = save_grid(grid, imgs, ncol=int(np.ceil(np.sqrt(n))))
    write_text(out, json.dumps(evaluate.json_ready(result), indent=2), '--out')
  except FsigError as err:
    fail(str(err))
  print(evaluate.summary(result))
  print(f'wrote {out}' + (f' and {result["grid"]}' if 'grid' in result else ''))


if __name__ == '__main__':
  run_main(main)
