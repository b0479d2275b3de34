"""KDIT's benchmark: StarGAN v2 from scratch vs distilled, on anime photos <-> sketches.

  python benchmarks/kdit_table.py --out=out/kdit                   # the paper's schedules
  python benchmarks/kdit_table.py --rows=scratch,full --stage1_steps=2000 \\
      --stage2_steps=2000 --widths=dim_in=32,max_conv_dim=128,mapping_hidden=128 \\
      --cells=benchmarks/results/kdit/cells_cpu --out=out/kdit_cpu  # reduced for a CPU

The reduced setting is one a 2-core CPU finishes within a session. Its rows
in benchmarks/results/kdit/cells_cpu (2026-12-01, no other job on the 2 cores
unless said): stage 2 ran 0.64-0.82 steps/s at dim_in=32, batch 8 (0.43-0.50
beside a test run), stage 1 3.9-4.4 steps/s; the scratch row took 46.8 min
trained and scored, the full row 71.5 min (stage 2 partly beside a test run).
At dim_in=64 stage 2 ran 0.22 steps/s with other jobs sharing the cores
(4,000 steps: about 5 h a row).

The offline analogue of the paper's cat2dog-200: two unpaired domains, 100 anime
photos (train-split positions i * 314) and 100 XDoG sketches of other faces
(positions i * 314 + 157), configs/kdit_anime.py. Rows (--rows):

  scratch   StarGAN v2's recipe (distill/stargan.py) from its initialisation
  full      KDIT: stage 1 (distill/kdit.py, style-mixed triplets from
            models/anime64), then stage 2 = the same recipe from the distilled nets
  kd_star   the paper's KD*: stage 1 without triplets (x2 = y = x1)
  l1_only   stage 1 with lambda_adv = 0
  adv_only  stage 1 with lambda_kdl = 0

Each row is scored latent-guided and reference-guided, per direction (photo ->
sketch, sketch -> photo), on --num_test test images of the source domain
(the test split: 2,000 photos, 2,000 sketches): FID-VGG and KID-VGG of the
outputs against the target domain's test images, and LPIPS diversity (the
mean LPIPS-Alex between --diversity_styles outputs of the same input, over
--diversity_inputs inputs: StarGAN v2's metric). Every arm runs the same
steps and widths (--stage2_steps, --widths); --stage1_steps is the distilled
arms' extra, data-free stage.

Writes OUT/table.md, OUT/table.json and OUT/grid.png (inputs, references, each
row's reference-guided outputs); OUT/runs/ holds the workdirs, so a killed
run resumes from its checkpoints, and OUT/cells (or --cells) each finished
row's scores and grid row (fsig_jax.utils.cells): they are read back instead
of trained again, and a committed folder (benchmarks/results/kdit/cells_*)
lets a later session finish the table.
"""
import itertools
import json
import os
import sys
import time

from absl import flags
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import common, kdit_anime  # noqa: E402  pylint: disable=g-import-not-at-top
from fsig_jax import api  # noqa: E402
from fsig_jax.data import targets  # noqa: E402
from fsig_jax.distill import kdit, stargan  # noqa: E402
from fsig_jax.errors import FsigError  # noqa: E402
from fsig_jax.metrics import evaluate, features, fid, lpips  # noqa: E402
from fsig_jax.utils.cells import Cells, model_release  # noqa: E402
from fsig_jax.utils.cli import benchmark_setup, fail, run_main  # noqa: E402
from fsig_jax.utils.files import write_text  # noqa: E402
from fsig_jax.utils.images import save_labeled_grid  # noqa: E402

ROWS = flags.DEFINE_string('rows', 'scratch,full,kd_star,l1_only,adv_only', 'rows')
SEED = flags.DEFINE_integer('seed', 0, 'training seed of every run')
STAGE1 = flags.DEFINE_integer('stage1_steps', 20000, 'KDIT stage-1 steps (paper: 20k)')
STAGE2 = flags.DEFINE_integer('stage2_steps', 100000, 'StarGAN v2 steps, every arm')
WIDTHS = flags.DEFINE_string('widths', '', 'student overrides NAME=VALUE,... (every arm)')
BATCH = flags.DEFINE_integer('batch_size', 8, 'stage-2 batch (StarGAN v2: 8)')
NUM_TEST = flags.DEFINE_integer('num_test', 500, 'test inputs per direction (<= 2000)')
DIV_INPUTS = flags.DEFINE_integer('diversity_inputs', 50, 'inputs for LPIPS diversity')
DIV_STYLES = flags.DEFINE_integer('diversity_styles', 10, 'outputs per input (StarGAN v2: 10)')
OUT = flags.DEFINE_string('out', 'out/kdit', 'output folder')
CELLS = flags.DEFINE_string('cells', '', 'folder of the finished rows (default OUT/cells); '
                            'tables with the same settings can share one')

NAMES = ('photo', 'sketch')


def _overrides(text):
  out = {}
  for item in filter(None, text.split(',')):
    k, _, v = item.partition('=')
    out[k.strip()] = int(v)
  return out


def stage1(row: str, out: str, widths: dict) -> str:
  work = os.path.join(out, 'runs', f'stage1.{row}.seed{SEED.value}')
  if not os.path.isfile(os.path.join(work, 'run.json')):
    c = kdit_anime.get_config('distill' + ('' if row == 'full' else f',{row}'))
    c.student.update(widths)
    c.steps, c.seed = STAGE1.value, SEED.value
    c.log_every, c.checkpoint_every = max(STAGE1.value // 20, 1), max(STAGE1.value // 10, 1)
    c.sample_every = max(STAGE1.value // 4, 1)
    kdit.train(c, work)
  return work


def stage2(row: str, out: str, widths: dict, domains) -> str:
  work = os.path.join(out, 'runs', f'stage2.{row}.seed{SEED.value}')
  if not os.path.isfile(os.path.join(work, 'run.json')):
    c = kdit_anime.get_config('scratch' if row == 'scratch' else 'stage2')
    if row != 'scratch':
      c.init = stage1(row, out, widths)
    c.student.update(widths)
    c.hparams.batch_size = BATCH.value
    c.steps, c.seed = STAGE2.value, SEED.value
    c.log_every, c.checkpoint_every = max(STAGE2.value // 20, 1), max(STAGE2.value // 10, 1)
    c.sample_every = max(STAGE2.value // 4, 1)
    stargan.train(c, work, domains=domains)
  return work


def diversity(student, x, domain: int, mode: str, refs) -> float:
  """Mean LPIPS-Alex over all pairs of outputs of the same input (StarGAN v2)."""
  k = DIV_STYLES.value
  outs = []
  for j in range(k):
    if mode == 'latent':
      outs.append(student(x, domain, seed=1000 + j))
    else:
      outs.append(student(x, domain, reference=refs[j * len(x):(j + 1) * len(x)]))
  dists = [np.asarray(lpips.lpips_distance(outs[a], outs[b], 'alex'))
           for a, b in itertools.combinations(range(k), 2)]
  return float(np.mean(dists))


def score(student, tests, num_test: int) -> dict:
  ext = features.vgg16_features()
  out = {}
  for src, trg in ((0, 1), (1, 0)):
    x = tests[src][:num_test]
    ref_feats = features.extract_features(ext, tests[trg])
    ref_stats = fid.FeatureStats.from_features(ref_feats, ext.name)
    rng = np.random.default_rng(0)
    for mode in ('latent', 'reference'):
      refs = tests[trg][rng.permutation(len(tests[trg]))[:max(num_test, DIV_INPUTS.value *
                                                               DIV_STYLES.value)]]
      y = (student(x, trg, seed=0) if mode == 'latent' else
           student(x, trg, reference=refs[:len(x)]))
      scores = evaluate.fid_kid(ext, features.extract_features(ext, y), ref_stats, ref_feats, 0)
      scores['LPIPS-div'] = diversity(student, x[:DIV_INPUTS.value], trg, mode, refs)
      out[f'{NAMES[src]}2{NAMES[trg]}/{mode}'] = scores
  return out


def main(argv):
  del argv
  out = benchmark_setup(OUT.value)
  t0 = time.time()
  rows = [r for r in ROWS.value.split(',') if r]
  try:
    unknown = [r for r in rows if r != 'scratch' and r not in common.KDIT_ABLATIONS]
    if unknown:
      raise ValueError(f'unknown rows {unknown}; choose from scratch, '
                       f'{", ".join(common.KDIT_ABLATIONS)}')
    widths = _overrides(WIDTHS.value)
    done = Cells(CELLS.value or os.path.join(out, 'cells'), dict(
        teacher=model_release(common.ANIME64), stage1_steps=STAGE1.value,
        stage2_steps=STAGE2.value, widths=widths, batch_size=BATCH.value,
        num_test=NUM_TEST.value, diversity_inputs=DIV_INPUTS.value,
        diversity_styles=DIV_STYLES.value), flag='--out (or --cells)')
    domains = stargan.load_domains(kdit_anime.get_config('scratch'), 64)
    tests = [targets.load_derived(s, 64) for s in common.KDIT_TEST]
    x, refs = tests[0][:8], tests[1][-8:]
    done.plan([f'{row}.seed{SEED.value}' for row in rows])
    records, blocks = {}, [('photo', x), ('reference', refs)]
    for row in rows:
      def train_and_score():
        t1 = time.time()
        student = api.load_student(stage2(row, out, widths, domains))
        scores = score(student, tests, NUM_TEST.value)
        return (dict(scores=scores, minutes=round((time.time() - t1) / 60, 1)),
                student(x, 1, reference=refs))
      record, images = done.get(f'{row}.seed{SEED.value}', train_and_score)
      records[row] = record['scores']
      blocks.append((row, images))
      print(f'[{(time.time() - t0) / 60:.1f} min] {row}: {json.dumps(records[row])}',
            flush=True)
  except (FsigError, ValueError) as e:
    fail(str(e))
  cols = sorted(next(iter(records.values())))
  lines = ['# KDIT: StarGAN v2 from scratch vs distilled (anime photo <-> sketch, 100 + 100)',
           '', f'Stage 1 {STAGE1.value} steps (distilled rows), stage 2 {STAGE2.value} steps at '
           f'batch {BATCH.value} (every row), widths {widths or "default"}, seed {SEED.value}; '
           f'{NUM_TEST.value} test inputs per direction. Cells: FID-VGG / KID-VGG / LPIPS '
           'diversity.', '', '| row | ' + ' | '.join(cols) + ' |',
           '|---|' + '---|' * len(cols)]
  for row, sc in records.items():
    lines.append(f'| {row} | ' + ' | '.join(
        f'{sc[c]["FID-VGG"]:.1f} / {sc[c]["KID-VGG"]:.3f} / {sc[c]["LPIPS-div"]:.3f}'
        for c in cols) + ' |')
  write_text(os.path.join(out, 'table.md'), '\n'.join(lines) + '\n')
  write_text(os.path.join(out, 'table.json'),
             json.dumps({'argv': sys.argv[1:], 'rows': records}, indent=2))
  save_labeled_grid(os.path.join(out, 'grid.png'), blocks)
  print('\n'.join(lines))
  print(f'wrote {out}/table.md, table.json, grid.png in {(time.time() - t0) / 60:.1f} min')


if __name__ == '__main__':
  run_main(main)
