"""KDIT part 2's benchmarks: SPADE students from scratch vs distilled, sketch -> photo.

  # 1. spatial conditions (an offline CelebAMask-HQ analogue: 500 sketch/photo pairs)
  python benchmarks/kdit_spade_table.py --cond=spatial --rows=scratch,distilled --out=out/ks
  # 2. vector conditions (an analogue of text-to-image: pooled VGG16 features of the sketch)
  python benchmarks/kdit_spade_table.py --cond=vector --rows=scratch,nodiv,full --out=out/kv
  # reduced for the CPU (every arm the same stage-2 steps and widths; COND is
  # spatial or vector, whose cells are committed in cells_vector_cpu):
  python benchmarks/kdit_spade_table.py --cond=COND --stage1_steps=1000 \\
      --stage2_steps=2000 --widths=nf=16,max_channels=128,spade_hidden=32 \\
      --cells=benchmarks/results/kdit_spade/cells_COND_cpu --out=out/kCOND_cpu

Rows are configs/kdit_spade.py runs: scratch = stage 2 from initialisation;
distilled (spatial: the paper's dagger row), nodiv (vector without the
semantic diversity loss: double dagger) and full (vector, with it) = stage 1
from models/anime64, then stage 2 from it. Training pairs: --pairs (default
500 spatial, 300 vector) evenly spaced anime faces and their XDoG sketches
(the sketch is the condition, the photo the target); test: the 2,000 test
faces. Scores (fsig_jax.metrics.paired, outputs with noise seed 0): FID-VGG /
KID-VGG against the test photos, LPIPS-Alex and SSIM against the true photos,
and consistency, the stand-in for mIoU: SSIM between XDoG(output) and the
input sketch (exact here, XDoG being the true operator).

Writes OUT/table.md, OUT/table.json, OUT/grid.png (conditions, each row's
outputs, true photos); OUT/runs holds the workdirs (a killed run resumes from
its checkpoints) and OUT/cells (or --cells) each finished row's scores and
grid row (fsig_jax.utils.cells): read back instead of trained again, and a
committed folder (benchmarks/results/kdit_spade/cells_*) lets a later
session finish the table. The two conditions need folders of their own (their
default pair counts differ, and the pair count is a setting of the cells).
"""
import json
import os
import sys
import time

from absl import flags
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import common, kdit_spade as configs  # noqa: E402  pylint: disable=g-import-not-at-top
from fsig_jax import api  # noqa: E402
from fsig_jax.data.pairs import load_pairs  # noqa: E402
from fsig_jax.data.sketch import xdog_sketch  # noqa: E402
from fsig_jax.distill import kdit_spade  # noqa: E402
from fsig_jax.errors import FsigError  # noqa: E402
from fsig_jax.metrics import features, paired, ssim  # noqa: E402
from fsig_jax.utils.cells import Cells, model_release  # noqa: E402
from fsig_jax.utils.cli import benchmark_setup, fail, run_main  # noqa: E402
from fsig_jax.utils.files import write_text  # noqa: E402
from fsig_jax.utils.images import save_labeled_grid  # noqa: E402

COND = flags.DEFINE_enum('cond', 'spatial', ['spatial', 'vector'], 'condition kind')
ROWS = flags.DEFINE_string('rows', None, 'rows (spatial: scratch,distilled; vector: '
                           'scratch,nodiv,full)')
PAIRS = flags.DEFINE_integer('pairs', None, 'training pairs (default 500 spatial, 300 vector)')
SEED = flags.DEFINE_integer('seed', 0, 'training seed of every run')
STAGE1 = flags.DEFINE_integer('stage1_steps', 20000, 'distillation steps (distilled rows)')
STAGE2 = flags.DEFINE_integer('stage2_steps', 20000, 'stage-2 steps, every row')
WIDTHS = flags.DEFINE_string('widths', '', 'student overrides NAME=VALUE,... (every row)')
NUM_TEST = flags.DEFINE_integer('num_test', 2000, 'test pairs scored')
OUT = flags.DEFINE_string('out', 'out/kdit_spade', 'output folder')
CELLS = flags.DEFINE_string('cells', '', 'folder of the finished rows (default OUT/cells); '
                            'tables with the same settings can share one')

STAGE1_ARG = {'distilled': 'spatial', 'nodiv': 'vector_nodiv', 'full': 'vector'}


def _widths(text):
  return {k.strip(): int(v) for k, _, v in (i.partition('=') for i in text.split(',') if i)}


def _cfg(arg, steps, widths):
  c = configs.get_config(arg)
  c.student.update(widths)
  if PAIRS.value:
    c.data.train_pairs = PAIRS.value
  c.steps, c.seed = steps, SEED.value
  c.log_every, c.checkpoint_every = max(steps // 20, 1), max(steps // 10, 1)
  c.sample_every = max(steps // 4, 1)
  return c


def run_row(row: str, out: str, widths: dict) -> str:
  work = os.path.join(out, 'runs', f'stage2.{COND.value}.{row}.seed{SEED.value}')
  if os.path.isfile(os.path.join(work, 'run.json')):
    return work
  if row == 'scratch':
    c = _cfg(f'scratch,{COND.value}', STAGE2.value, widths)
  else:
    s1 = os.path.join(out, 'runs', f'stage1.{STAGE1_ARG[row]}.seed{SEED.value}')
    if not os.path.isfile(os.path.join(s1, 'run.json')):
      kdit_spade.train(_cfg(f'distill,{STAGE1_ARG[row]}', STAGE1.value, widths), s1)
    c = _cfg(f'stage2,{COND.value}', STAGE2.value, widths)
    c.init = s1
  kdit_spade.train(c, work)
  return work


def main(argv):
  del argv
  out = benchmark_setup(OUT.value)
  t0 = time.time()
  default_rows = 'scratch,distilled' if COND.value == 'spatial' else 'scratch,nodiv,full'
  rows = [r for r in (ROWS.value or default_rows).split(',') if r]
  try:
    bad = [r for r in rows if r != 'scratch' and (r not in STAGE1_ARG or (
        COND.value == 'spatial') != (r == 'distilled'))]
    if bad:
      raise ValueError(f'rows {bad} do not apply to --cond={COND.value}; use {default_rows}')
    widths = _widths(WIDTHS.value)
    photos, sketches = load_pairs('derived:anime_sketch', 'test', 1, 64)
    photos, sketches = photos[:NUM_TEST.value], sketches[:NUM_TEST.value]
    conds = sketches if COND.value == 'spatial' else features.extract_features(
        features.vgg16_features(), sketches)
    done = Cells(CELLS.value or os.path.join(out, 'cells'), dict(
        teacher=model_release(common.ANIME64),
        pairs=PAIRS.value or configs.get_config(f'scratch,{COND.value}').data.train_pairs,
        stage1_steps=STAGE1.value, stage2_steps=STAGE2.value, widths=widths,
        num_test=NUM_TEST.value), flag='--out (or --cells)')
    done.plan([f'{COND.value}.{row}.seed{SEED.value}' for row in rows])
    records, blocks = {}, [('sketch', sketches[:8])]
    for row in rows:
      def train_and_score():
        t1 = time.time()
        student = api.load_student(run_row(row, out, widths))
        y = student(conds, seed=0)
        scores = paired.score_pairs(y, photos, metrics=('lpips_alex', 'ssim', 'fid_vgg',
                                                         'kid_vgg'))
        scores['consistency'] = float(np.mean(np.concatenate([
            np.asarray(ssim.ssim(xdog_sketch(y[i:i + 64]), sketches[i:i + 64]))
            for i in range(0, len(y), 64)])))
        return dict(scores=scores, minutes=round((time.time() - t1) / 60, 1)), y[:8]
      record, images = done.get(f'{COND.value}.{row}.seed{SEED.value}', train_and_score)
      records[row] = record['scores']
      blocks.append((row, images))
      print(f'[{(time.time() - t0) / 60:.1f} min] {row}: {paired.summary(records[row])} | '
            f'consistency {records[row]["consistency"]:.4f}', flush=True)
  except (FsigError, ValueError) as e:
    fail(str(e))
  blocks.append(('true photo', photos[:8]))
  save_labeled_grid(os.path.join(out, 'grid.png'), blocks)
  keys = ('FID-VGG', 'KID-VGG', 'LPIPS-Alex', 'SSIM', 'consistency')
  lines = [f'# KDIT part 2, {COND.value} conditions: sketch -> photo', '',
           f'Stage 1 {STAGE1.value} steps (distilled rows), stage 2 {STAGE2.value} steps '
           f'(every row), widths {widths or "default"}, seed {SEED.value}, '
           f'{len(photos)} test pairs. FID-VGG / KID-VGG / LPIPS lower is better; SSIM and '
           'consistency (SSIM of XDoG(output) with the input sketch) higher.', '',
           '| row | ' + ' | '.join(keys) + ' |', '|---|' + '---|' * len(keys)]
  for row, sc in records.items():
    lines.append(f'| {row} | ' + ' | '.join(f'{sc[k]:.4g}' for k in keys) + ' |')
  write_text(os.path.join(out, 'table.md'), '\n'.join(lines) + '\n')
  write_text(os.path.join(out, 'table.json'),
             json.dumps({'argv': sys.argv[1:], 'rows': records}, indent=2))
  print('\n'.join(lines))


if __name__ == '__main__':
  run_main(main)
