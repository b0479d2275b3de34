"""GPD's benchmarks: student rows on paired test sets, and the teacher diagnostic.

  # 1. anime photo -> sketch (ground truth for all 2,000 test faces), Table 4's rows
  python benchmarks/gpd_table.py --data=anime_sketch --rows=bl,aug,aug_anchor,gpd,oracle \\
      --pairs=10,20 --seeds=0,1,2 --steps=30000 --out=out/gpd_anime
  # 2. real photo/sketch pairs (../shared/data/cufs_pairs_64), the rest of the 188 as test
  python benchmarks/gpd_table.py --data=cufs --rows=bl,gpd --pairs=10,20 --out=out/gpd_cufs
  # 3. data scale (Tables 5-6): both students, BL vs GPD
  python benchmarks/gpd_table.py --data=anime_sketch --rows=bl,gpd \\
      --students=unet_mspade,pix2pix --pairs=20,80,320 --out=out/gpd_scale
  # a table in progress: its finished cells only (rows not run yet marked, rows with
  # some seeds name them), nothing trained
  python benchmarks/gpd_table.py --data=anime_sketch --rows=bl,gpd \\
      --students=unet_mspade,pix2pix --pairs=20,80,320 --cells=DIR --finished_only
  # the teacher diagnostic: which adaptation method makes the best G_t
  python benchmarks/gpd_table.py --diagnostic --teacher_methods=tgan,cdc,rick,adam \\
      --pairs=10 --out=out/gpd_teachers

Each row is the run `configs/gpd_anime_sketch.py:ROW,STUDENT,PAIRS` (or
gpd_cufs.py) with --steps and --seed set, trained with `fsig_jax.distill.gpd`
and scored on the data's test pairs with `fsig_jax.metrics.paired`: LPIPS
(AlexNet, VGG), SSIM, FID-VGG and KID-VGG of the outputs against the true
test targets. Every row of one (data, pairs) shares one teacher G_t: the
source adapted with --teacher_method (default CDC, 1000 steps, seed 0) to the
training targets, trained once under OUT/teachers (decision: one teacher per
(data, pairs), so that rows and seeds differ only in the student).

Writes to --out:
  table.md      per (data, pairs): rows x metrics, mean ± sample std over seeds
  table.json    the command and every run's scores and minutes
  grid_*.png    per (data, pairs): test photos, each row's outputs (first
                seed), the true targets
  cells/        (or --cells) each finished run's scores and grid row
                (fsig_jax.utils.cells): a table reads them back instead of
                training again, tables with the same settings share them, and
                a committed folder (benchmarks/results/gpd/cells_r2) lets a
                later session finish a table
  runs/, teachers/  the workdirs; a killed run resumes from its newest
                checkpoint.

Teacher diagnostic (--diagnostic, anime_sketch only, where the true operator
is known): for each --teacher_methods, LPIPS-Alex and SSIM between G_t(z) and
XDoG(G_s(z)) over --num_latents fixed latents (seed 0, shared noise): how
close each adapted teacher is to the true photo -> sketch operator. Writes
teachers.md, teachers.json and teachers.png (G_s(z), XDoG(G_s(z)) and each
teacher's G_t(z) on the same 8 latents).
"""
import json
import logging
import os
import sys
import time

from absl import flags
import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import common  # noqa: E402  pylint: disable=g-import-not-at-top
from fsig_jax import api  # noqa: E402
from fsig_jax.convert.load import load_pretrained  # noqa: E402
from fsig_jax.data.pairs import load_pairs  # noqa: E402
from fsig_jax.data.sketch import xdog_sketch  # noqa: E402
from fsig_jax.distill import gpd  # noqa: E402
from fsig_jax.engine import export, loop  # noqa: E402
from fsig_jax.errors import FsigError  # noqa: E402
from fsig_jax.metrics import paired  # noqa: E402
from fsig_jax.utils.cells import Cells, model_release  # noqa: E402
from fsig_jax.utils.cli import benchmark_setup, fail, run_main  # noqa: E402
from fsig_jax.utils.files import write_text  # noqa: E402
from fsig_jax.utils.images import save_labeled_grid  # noqa: E402

DATA = flags.DEFINE_enum('data', 'anime_sketch', sorted(common.PAIRS), 'paired data')
ROWS = flags.DEFINE_string('rows', 'bl,aug,aug_anchor,gpd,oracle', 'rows (configs/common.py)')
STUDENTS = flags.DEFINE_string('students', 'unet_mspade', 'students: unet_mspade,pix2pix')
PAIRS = flags.DEFINE_string('pairs', '10', 'training pair counts, comma-separated')
SEEDS = flags.DEFINE_string('seeds', '0', 'student seeds, comma-separated')
STEPS = flags.DEFINE_integer('steps', 30000, 'student steps (paper: about 30k)')
TEACHER_METHOD = flags.DEFINE_string('teacher_method', 'cdc', 'adaptation method of G_t')
TEACHER_STEPS = flags.DEFINE_integer('teacher_steps', 1000, 'adaptation steps of G_t')
TEST_PAIRS = flags.DEFINE_integer('test_pairs', -1, 'test pairs scored (-1: all)')
DIAGNOSTIC = flags.DEFINE_bool('diagnostic', False, 'score teachers instead of students')
TEACHER_METHODS = flags.DEFINE_string('teacher_methods', 'tgan,cdc,rick,adam',
                                      '--diagnostic: the methods compared')
NUM_LATENTS = flags.DEFINE_integer('num_latents', 500, '--diagnostic: latents scored')
GRID = flags.DEFINE_integer('grid', 8, 'test photos in each grid')
FINISHED_ONLY = flags.DEFINE_bool('finished_only', False, 'assemble the table from the '
                                  'finished cells only (a table in progress); trains nothing')
OUT = flags.DEFINE_string('out', 'out/gpd_table', 'output folder')
CELLS = flags.DEFINE_string('cells', '', 'folder of the finished runs (default OUT/cells); '
                            'tables with the same settings can share one')

log = logging.getLogger('fsig_jax')
METRICS = ('LPIPS-Alex', 'LPIPS-Vgg', 'SSIM', 'FID-VGG', 'KID-VGG')


def run_config(data: str, row: str, student: str, pairs: int, seed: int, steps: int,
               teacher_method: str, teacher_steps: int, test_pairs: int):
  c = common.gpd(row, data, student, pairs)
  c.steps, c.seed = steps, seed
  c.log_every = max(steps // 20, 1)
  c.checkpoint_every = max(steps // 10, 1)
  c.sample_every = 0
  c.eval.test_pairs = test_pairs
  c.teacher.adapt = common.base(teacher_method)
  c.teacher.adapt.steps = teacher_steps
  c.teacher.adapt.sample_every = 0
  c.teacher.adapt.log_every = max(teacher_steps // 10, 1)
  return c


def teacher(source, data: str, pairs: int, method: str, steps: int, out: str):
  """G_t for (data, pairs): adapted once under OUT/teachers, reused by every row."""
  work = os.path.join(out, 'teachers', f'{data}.{pairs}.{method}.{steps}')
  if os.path.isfile(os.path.join(work, 'run.json')):
    return export.bundle_from_workdir(work)[0]
  res = source.config.resolution
  _, targets = load_pairs(common.PAIRS[data], 'train', pairs, res)
  cfg = run_config(data, 'gpd', 'unet_mspade', pairs, 0, 1, method, steps, 0).teacher.adapt
  cfg.seed = 0
  cfg.model.checkpoint = common.ANIME64
  cfg.data.source = f'{common.PAIRS[data]} train{pairs} targets'
  t0 = time.time()
  _, adapted = loop.train(cfg, work, bundle=source, images=targets)
  print(f'teacher {method} on {data} {pairs} pairs: {time.time() - t0:.0f}s', flush=True)
  return adapted


def _mean_std(vals):
  vals = [v for v in vals if v is not None and np.isfinite(v)]
  if not vals:
    return '–'
  m = float(np.mean(vals))
  return f'{m:.4g}' + (f' ± {np.std(vals, ddof=1):.2g}' if len(vals) > 1 else '')


def cell_name(data: str, pairs: int, student: str, row: str, seed: int) -> str:
  return f'{data}.{pairs}.{student}.{row}.seed{seed}'


def run_students(source, out: str, *, data: str, rows, students, pair_counts, seeds, steps: int,
                 teacher_method: str, teacher_steps: int, test_pairs: int, grid: int,
                 cells_dir: str = '', finished_only: bool = False):
  """Trains (or reads back from the cells) every row; returns (records, table lines).
  finished_only: read the finished cells and train nothing; a row none of whose
  seeds has finished reads 'not run', one with some of them names those seeds
  ('bl (seeds 0,1 only)')."""
  for row in rows:  # a bad row fails now, not after hours of the others
    run_config(data, row, students[0], pair_counts[0], 0, 1, teacher_method, 1, 0)
  done = Cells(cells_dir or os.path.join(out, 'cells'), dict(
      source=model_release(common.ANIME64), steps=steps, teacher_method=teacher_method,
      teacher_steps=teacher_steps, test_pairs=test_pairs, grid=grid), flag='--out (or --cells)')
  names = [cell_name(data, n, st, r, sd) for n in pair_counts for st in students
           for r in rows for sd in seeds]
  done.plan([x for x in names if done.has(x) or not finished_only])
  records = []
  lines = [f'# GPD students on {data}', '',
           f'{steps} student steps, seeds {list(seeds)} (mean ± std over seeds); teacher G_t: '
           f'{teacher_method} ({teacher_steps} steps, seed 0) on the training targets, one '
           'per pair count. LPIPS / FID-VGG / KID-VGG lower is better, SSIM higher. '
           'Minutes: training and scoring one run on this machine (compile included).', '']
  t_start = time.time()
  res = source.config.resolution
  for n in pair_counts:
    g_t = None
    test_x, test_y = load_pairs(common.PAIRS[data], 'test', n, res)
    if test_pairs > 0:
      test_x, test_y = test_x[:test_pairs], test_y[:test_pairs]
    blocks = [('test photo', test_x[:grid])]
    lines += [f'## {n} training pairs ({len(test_x)} test pairs)', '',
              '| student | row | ' + ' | '.join(METRICS) + ' | minutes |',
              '|---|---|' + '---|' * (len(METRICS) + 1)]
    for student in students:
      for row in rows:
        cell = []
        for seed in seeds:
          if finished_only and not done.has(cell_name(data, n, student, row, seed)):
            continue

          def train_and_score():
            nonlocal g_t
            c = run_config(data, row, student, n, seed, steps, teacher_method, teacher_steps,
                           test_pairs)
            work = os.path.join(out, 'runs', cell_name(data, n, student, row, seed))
            t0 = time.time()
            if not os.path.isfile(os.path.join(work, 'run.json')):  # else trained, not scored
              needs_g_t = gpd.adapts_here(c)  # not BL (real pairs only) nor the oracle
              if needs_g_t and g_t is None:  # trained once, timed on its own
                g_t = teacher(source, data, n, teacher_method, teacher_steps, out)
                t0 = time.time()
              gpd.train(c, work, source=source, adapted=g_t if needs_g_t else None)
            with open(os.path.join(work, 'run.json')) as f:
              info = json.load(f)
            images = api.load_student(work)(test_x[:grid])
            rec = dict(data=data, pairs=n, student=student, row=row, seed=seed, steps=steps,
                       scores=info['test_scores'], minutes=round((time.time() - t0) / 60, 1))
            return rec, images
          rec, images = done.get(cell_name(data, n, student, row, seed), train_and_score)
          records.append(rec)
          cell.append(rec)
          print(f'[{(time.time() - t_start) / 60:.1f} min] {data} {n} pairs {student} {row} '
                f'seed {seed}: {paired.summary(rec["scores"])}', flush=True)
          if seed == seeds[0]:
            blocks.append((f'{student} {row}', images))
        if not cell:
          lines.append(f'| {student} | {row} | not run |' + ' |' * len(METRICS))
          continue
        label = row if len(cell) == len(seeds) else (  # a table in progress says so
            f'{row} (seed{"s" * (len(cell) > 1)} {",".join(str(r["seed"]) for r in cell)} only)')
        lines.append(f'| {student} | {label} | ' + ' | '.join(
            _mean_std([r['scores'].get(k) for r in cell]) for k in METRICS) +
            f' | {_mean_std([r["minutes"] for r in cell])} |')
    blocks.append(('true target', test_y[:grid]))
    lines.append('')
    save_labeled_grid(os.path.join(out, f'grid_{data}_{n}.png'), blocks)
  return records, lines


def diagnose_teachers(source, out: str, *, methods, pair_counts, teacher_steps: int,
                      num_latents: int):
  """LPIPS-Alex and SSIM of G_t(z) against XDoG(G_s(z)) per adaptation method; also
  OUT/teachers.png: G_s(z), XDoG(G_s(z)) and each teacher's G_t(z) on the first 8
  latents (the same z and noise in every row)."""
  lines = ['# GPD teacher diagnostic: G_t(z) vs XDoG(G_s(z)) on anime_sketch', '',
           f'{num_latents} fixed latents (seed 0), noise shared by G_s and G_t; teachers '
           f'adapted {teacher_steps} steps (seed 0) to the training sketches. LPIPS lower and '
           'SSIM higher = closer to the true photo -> sketch operator.', '',
           '| pairs | method | LPIPS-Alex | SSIM |', '|---|---|---|---|']
  records, blocks = [], []
  pairs_fn = gpd.make_teacher_pairs(source.config, 50)
  for n in pair_counts:
    for method in methods:
      g_t = teacher(source, 'anime_sketch', n, method, teacher_steps, out)
      inputs = gpd.teacher_inputs(source, g_t)
      xs, ys = [], []
      for i in range(0, num_latents, 50):
        x, y = pairs_fn(inputs, jax.random.fold_in(jax.random.PRNGKey(0), i))
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
      x = np.concatenate(xs)[:num_latents]
      y = np.concatenate(ys)[:num_latents]
      sketch = xdog_sketch(x)
      scores = paired.score_pairs(y, sketch, metrics=('lpips_alex', 'ssim'))
      if not blocks:
        blocks = [('G_s(z)', x[:8]), ('XDoG(G_s(z))', sketch[:8])]
      blocks.append((f'G_t(z) {method}, {n} pairs', y[:8]))
      records.append(dict(pairs=n, method=method, scores=scores))
      lines.append(f'| {n} | {method} | {scores["LPIPS-Alex"]:.4f} | {scores["SSIM"]:.4f} |')
      print(f'{n} pairs, teacher {method}: {paired.summary(scores)}', flush=True)
  save_labeled_grid(os.path.join(out, 'teachers.png'), blocks)
  return records, lines + ['']


def main(argv):
  del argv
  out = benchmark_setup(OUT.value)
  logging.getLogger('fsig_jax').setLevel(logging.INFO)
  split = lambda s: [t for t in s.split(',') if t]  # noqa: E731
  t0 = time.time()
  try:
    pair_counts = [int(p) for p in split(PAIRS.value)]
    source = load_pretrained(common.ANIME64, require_discriminator=True)
    if DIAGNOSTIC.value:
      records, lines = diagnose_teachers(
          source, out, methods=split(TEACHER_METHODS.value), pair_counts=pair_counts,
          teacher_steps=TEACHER_STEPS.value, num_latents=NUM_LATENTS.value)
      name = 'teachers'
    else:
      records, lines = run_students(
          source, out, data=DATA.value, rows=split(ROWS.value), students=split(STUDENTS.value),
          pair_counts=pair_counts, seeds=[int(s) for s in split(SEEDS.value)],
          steps=STEPS.value, teacher_method=TEACHER_METHOD.value,
          teacher_steps=TEACHER_STEPS.value, test_pairs=TEST_PAIRS.value, grid=GRID.value,
          cells_dir=CELLS.value, finished_only=FINISHED_ONLY.value)
      name = 'table'
  except (FsigError, ValueError) as e:
    fail(str(e))
  write_text(os.path.join(out, f'{name}.md'), '\n'.join(lines))
  write_text(os.path.join(out, f'{name}.json'), json.dumps(
      {'argv': sys.argv[1:], 'minutes': round((time.time() - t0) / 60, 1), 'runs': records},
      indent=2))
  print('\n'.join(lines))
  print(f'wrote {out}/{name}.md, {name}.json in {(time.time() - t0) / 60:.1f} min')


if __name__ == '__main__':
  run_main(main)
