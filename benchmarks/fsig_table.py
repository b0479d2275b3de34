"""The few-shot comparison table: every method on the offline targets, over seeds.

  python benchmarks/fsig_table.py --quick --source=random:anime64     # smoke: < 20 min
  python benchmarks/fsig_table.py --source=models/anime64             # the full table
  python benchmarks/fsig_table.py --source=runs/pretrain_anime64 --methods=tgan,cdc,rick

For each target, method and seed the source model is adapted with the run
config `configs/offline.py:METHOD,TARGET` (the same run `launch/main.py`
makes, steps and seed set here) and its G_ema is scored with
`fsig_jax.metrics.evaluate` on fixed evaluation latents (seed --eval_seed, the
same for every method). Writes to --out:

  table.md      rows methods (first: the unadapted source), columns targets;
                cells "FID-VGG a ± b / intra-LPIPS c ± d", mean ± sample std
                (ddof 1) over the seeds, the layout of the CDC / RSSA / RICK
                tables; a note per column on what FID-VGG is measured against;
                per column, the order against the papers' (RICK's Table 1
                FID: Kendall's tau and the pairs the other way round; CDC's
                intra-LPIPS above TGAN's or not)
  results.json  the settings, every run's numbers and timings, the table
  grid.png      per target: the source row, then one row per method (first
                seed), all on the same latents and noise
  cells/        one finished run each (its numbers, and its grid row for the
                first seed), written atomically as soon as the run is scored;
                --cells=DIR keeps them elsewhere, shared by several tables
  runs/         the workdir of the run in progress (checkpoints every 100
                steps), removed once its cell is written

Progress. Each finished run prints its numbers and 'run k of n, about T
left': the runs still to train at the mean wall time of those trained so far.

Resuming. Rerun the same command with the same --out after a kill: finished
runs are read back from OUT/cells, a run that was in progress resumes from its
last checkpoint, and only the rest are trained. Methods,
targets and seeds may be added on a rerun; a change to anything that alters a
run's numbers (source, steps, evaluation samples or seed, overrides) is
refused, naming the setting, so that one table never mixes settings.

FID-VGG uses VGG16 features (not Inception), so it is comparable only within
this table. The derived target `anime_sketch` has a real 2,000-image test set
(`derived:anime_sketch:test`), so its FID-VGG is against held-out images; the
real 10-shot sets have no test set, so theirs is against the 10 training
images only (as in the papers' intra-LPIPS-centric few-shot protocol) and is
best read together with intra-LPIPS, which rewards diversity. With
--inception_weights=PTH (pytorch-fid's weights file, read without torch) the
table reports FID / KID on Inception-v3 features, the papers' metric; the
feature network is a setting of every cell, so one table never mixes the two.

Settings. Full (default): methods tgan, tgan_ada (TGAN + ADA, CDC's --augment:
rosinality's non-leaking ADA with the adaptive p), tgan_diffaug (TGAN +
DiffAugment; named tgan_aug before, so tables made then show DiffAugment under
that name), freezed, ewc, cdc, dcl, adam, rick, ewc+rick, adam+rick, kd_fsig;
targets anime_sketch, babies, sketches, caricatures; seeds 0,1,2 on anime_sketch
(held-out test set) and seed 0 on the real ten-shot sets (issue 19's protocol;
--real_seeds, which takes --seeds when only that is given); 1000 steps
(configs/offline.py) at batch 4; 1000 evaluation samples (CDC's count).
--quick: target anime_sketch, seeds 0,1, 5 steps, 50 evaluation samples,
EWC's Fisher from 64 instead of 5000 samples; it checks the whole pipeline,
its numbers do not rank methods.

Run time, measured on the 2-core CPU machine with the anime64 architecture
(`--source=random:anime64`: the network of models/anime64, randomly
initialised), cold XLA cache, with the earlier list of six methods (tgan,
tgan_aug, freezed, ewc, cdc, dcl; the twelve of today take longer): --quick
took 8.6 min with only the niced pretraining job beside it (about half of it compiling the six methods' steps
once each; a rerun with the same --out reuses them from OUT/xla_cache), and
18.5 min while other jobs also loaded the machine (load average ~5). In the
8.6 min run: 1.4 (dcl) to 2.8 (tgan) steps/s at batch 4 and ~5 s per
50-sample evaluation. --quick ends by printing the full setting's run time
scaled from its own measurements: 12.5 h on this CPU (25 h under the heavier
load), plus about 1 h for EWC's 5000-sample Fisher, which the estimate does
not model: once per seed, kept in OUT/cache and reused by the other targets'
ewc and ewc+rick runs (methods/ewc.py `fisher_cache`).
"""
import json
import logging
import os
import re
import shutil
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

from absl import flags
import jax
import numpy as np

# configs/ is imported as a package from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import common, offline  # noqa: E402  pylint: disable=g-import-not-at-top
from fsig_jax.convert.load import load_pretrained  # noqa: E402
from fsig_jax.engine import export, loop, run_config  # noqa: E402
from fsig_jax.errors import CheckpointError, FsigError  # noqa: E402
from fsig_jax.methods import get_method  # noqa: E402
from fsig_jax.metrics import evaluate  # noqa: E402
from fsig_jax.models import presets  # noqa: E402
from fsig_jax.models.bundle import ModelBundle, init_bundle  # noqa: E402
from fsig_jax.utils.cli import fail, parse_seeds, run_main  # noqa: E402
from fsig_jax.utils.cells import Cells, finite  # noqa: E402
from fsig_jax.utils.files import write_text  # noqa: E402
from fsig_jax.utils.images import save_labeled_grid  # noqa: E402

# The papers' comparison rows: TGAN, TGAN+ADA (CDC's --augment), TGAN+DiffAugment,
# FreezeD, EWC, CDC, DCL, AdAM, RICK, EWC+RICK, AdAM+RICK, KD-FSIG.
FULL = dict(methods='tgan,tgan_ada,tgan_diffaug,freezed,ewc,cdc,dcl,adam,rick,ewc+rick,'
                    'adam+rick,kd_fsig',
            targets='anime_sketch,babies,sketches,caricatures', seeds='0,1,2', real_seeds='0',
            steps=1000, num_samples=1000)
QUICK = dict(methods=FULL['methods'], targets='anime_sketch', seeds='0,1', steps=5,
             num_samples=50, method_kwargs={
                 'ewc': {'n_samples': 64},
                 # Schedules shortened to fit 5 steps (README defaults: warm-up 250,
                 # estimates every 50; probing 500 steps on 250 x 4 Fisher samples).
                 'rick': {'warmup_iter': 1, 'fisher_freq': 2, 'num_fisher_img': 2},
                 'adam': {'probe_steps': 5, 'num_batch_fisher': 4}})

SOURCE = flags.DEFINE_string('source', None, 'source model: a .pt/.pkl/fsig-jax model dir, a '
                             'training workdir, or random:NAME (default: models/anime64)')
QUICK_FLAG = flags.DEFINE_bool('quick', False, 'the < 20 min smoke setting (see the docstring)')
METHODS = flags.DEFINE_string('methods', None, f'comma-separated (default {FULL["methods"]}); '
                              'registry names, aliases of configs/common.py, or a+b compositions')
TARGETS = flags.DEFINE_string('targets', None, 'comma-separated offline targets (default '
                              f'{FULL["targets"]}, --quick: {QUICK["targets"]})')
SEEDS = flags.DEFINE_string('seeds', None, 'comma-separated training seeds (default 0,1,2; '
                            '--quick 0,1)')
REAL_SEEDS = flags.DEFINE_string('real_seeds', None, 'training seeds on the real ten-shot '
                                 'targets (no held-out test set; babies, sketches, ...): '
                                 'default --seeds if given, else 0 (the full setting)')
STEPS = flags.DEFINE_integer('steps', None, 'adaptation steps (default 1000; --quick 5)')
NUM = flags.DEFINE_integer('num_samples', None, 'evaluation samples (default 1000; --quick 50)')
EVAL_SEED = flags.DEFINE_integer('eval_seed', 0, 'seed of the evaluation latents (all methods)')
GRID_COLS = flags.DEFINE_integer('grid_cols', 8, 'samples per row of grid.png')
HPARAMS = flags.DEFINE_string('hparams', '', 'hyper-parameter overrides NAME=VALUE,... (e.g. '
                              'batch_size=8)')
OUT = flags.DEFINE_string('out', 'out/fsig_table', 'output folder')
CELLS = flags.DEFINE_string('cells', '', 'folder of the finished runs (default OUT/cells); '
                            'tables of other methods or targets may share one')
INCEPTION = flags.DEFINE_string('inception_weights', '', "pytorch-fid's pt_inception-2015-12-"
                                "05-*.pth: FID / KID on Inception features, the papers' metric "
                                "(default: VGG16 features, FID-VGG)")

log = logging.getLogger('fsig_jax')


def load_source(spec: str) -> ModelBundle:
  """A source bundle (with D) from a checkpoint, a training workdir or random:NAME."""
  if spec.startswith('random:'):
    try:
      cfg = presets.parse_random_spec(spec)
    except ValueError as e:
      raise CheckpointError(str(e)) from None
    return init_bundle(cfg, jax.random.PRNGKey(0), source=spec)
  if not os.path.exists(spec):
    raise CheckpointError(f'--source {spec} does not exist')
  if export.is_workdir(spec):
    bundle, _ = export.bundle_from_workdir(spec)
  else:
    bundle = load_pretrained(spec, require_discriminator=True)
  bundle.require('D')
  return bundle


def parse_overrides(text: str) -> Dict[str, object]:
  """'lr=0.001,batch_size=8' -> {'lr': 0.001, 'batch_size': 8} (JSON values where they parse)."""
  out = {}
  for item in filter(None, (t.strip() for t in text.split(','))):
    if '=' not in item:
      raise ValueError(f'--hparams item {item!r} is not NAME=VALUE')
    k, v = item.split('=', 1)
    try:
      out[k.strip()] = json.loads(v)
    except ValueError:
      out[k.strip()] = v
  return out


class _RateLog(logging.Handler):
  """Keeps the last steady-state step rate the loop logs ('... | 1.23 it/s | ...')."""

  def __init__(self):
    super().__init__()
    self.rate = float('nan')

  def emit(self, record):
    m = re.search(r'\| ([0-9.]+) it/s \|', record.getMessage())
    if m:
      self.rate = float(m.group(1))


def run_config_for(method: str, target: str, steps: int, seed: int, hparams: Dict[str, object],
                   method_kwargs: Dict[str, dict]):
  """configs/offline.py:METHOD,TARGET with the table's steps, seed and overrides."""
  c = offline.get_config(f'{method},{target}')
  c.steps, c.seed = steps, seed
  c.sample_every = 0
  c.eval_every = 0  # scored once at the end, on the table's evaluation latents
  c.checkpoint_every = max(1, min(RUN_CHECKPOINT_EVERY, steps // 2))
  c.log_every = max(steps - 1, 1)  # first step, then one steady-state rate at the end
  for k, v in hparams.items():
    if k not in c.hparams:
      raise ValueError(f'unknown hyper-parameter {k!r}; valid: {sorted(c.hparams.keys())}')
    c.hparams[k] = type(c.hparams[k])(v)
  names = run_config.method_names(c)
  for name, kw in method_kwargs.items():
    if name in names:
      c.method.kwargs[name] = dict(kw)
  return c


def _mean_std(values: Sequence[float]):
  vals = [v for v in values if v is not None and np.isfinite(v)]
  if not vals:
    return float('nan'), float('nan')
  return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else float('nan'))


def _cell(results: List[dict], fid_key: str) -> str:
  def fmt(key, digits):
    m, s = _mean_std([r.get(key) for r in results])
    if not np.isfinite(m):
      return '–'
    return f'{m:.{digits}f}' + (f' ± {s:.{digits}f}' if np.isfinite(s) else '')
  return f'{fmt(fid_key, 1)} / {fmt(evaluate.INTRA_LPIPS, 3)}'


def fid_key(settings: dict) -> str:
  """'FID' with Inception features (--inception_weights), else 'FID-VGG'."""
  return 'FID' if settings.get('inception_weights') else 'FID-VGG'


def seeds_of(seeds, target: str) -> List[int]:
  """A target's training seeds: `seeds` is one list for every target or a dict
  target -> list."""
  return list(seeds[target] if isinstance(seeds, dict) else seeds)


def _seeds_text(seeds, targets: Sequence[str]) -> str:
  per = {t: seeds_of(seeds, t) for t in targets}
  if len({tuple(v) for v in per.values()}) <= 1:
    return str(next(iter(per.values()), []))
  return ', '.join(f'{t} {v}' for t, v in per.items())


# RICK's Table 1 (Zhao et al., CVPR 2023), FFHQ -> Babies 10-shot, FID (lower is better),
# under this table's method names; and CDC's finding that it keeps more diversity than
# TGAN (Ojha et al., CVPR 2021, Table 1: intra-cluster LPIPS, CDC above TGAN).
RICK_TABLE1_BABIES_FID = {'tgan': 101.6, 'tgan_ada': 97.9, 'freezed': 96.3, 'ewc': 79.9,
                          'cdc': 69.1, 'dcl': 56.5, 'adam': 48.8, 'ewc+rick': 68.2,
                          'adam+rick': 43.1, 'rick': 39.4}


def kendall_tau(ours: Dict[str, float], theirs: Dict[str, float]):
  """(tau, n, reversed pairs): Kendall's tau-a between two orders of the methods both
  score (1: the same order, -1: reversed; nan below 2 methods) and the pairs of
  methods the two put the other way round (ours better first)."""
  names = sorted(m for m in ours if m in theirs and np.isfinite(ours[m]))
  conc = disc = 0
  flipped = []
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      sign = np.sign(ours[a] - ours[b]) * np.sign(theirs[a] - theirs[b])
      if sign > 0:
        conc += 1
      elif sign < 0:
        disc += 1
        flipped.append((a, b) if ours[a] < ours[b] else (b, a))
  pairs = len(names) * (len(names) - 1) // 2
  return ((conc - disc) / pairs if pairs else float('nan')), len(names), flipped


def paper_agreement(cells: Dict[tuple, List[dict]], targets: Sequence[str], key: str) -> List[str]:
  """table.md's lines on where the order agrees with the papers': per target, our
  mean FID (`key`) order against RICK's Table 1 (Kendall's tau over the methods both
  have, and the pairs ordered the other way), and whether CDC's mean intra-LPIPS is
  above TGAN's (CDC's finding). Decision: the papers' numbers are FFHQ -> Babies at
  256 px with Inception FID, ours a 64 px miniature, so only orders are compared."""
  lines = ['', "Order against the papers (FFHQ -> Babies, RICK's Table 1 FID; CDC's "
           'intra-LPIPS finding, CDC above TGAN); orders only, the settings differ:']
  for t in targets:
    ours = {m: _mean_std([r.get(key) for r in cells.get((m, t), [])])[0]
            for m in RICK_TABLE1_BABIES_FID}
    tau, n, flipped = kendall_tau(ours, RICK_TABLE1_BABIES_FID)
    if n < 2:
      text = f'fewer than 2 of its methods measured ({n})'
    else:
      text = f"Kendall's tau {tau:+.2f} over {n} methods"
      if flipped:
        text += ('; the other way round (ours: A < B): '
                 + ', '.join(f'{a} < {b}' for a, b in flipped))
    lpips = {m: _mean_std([r.get(evaluate.INTRA_LPIPS) for r in cells.get((m, t), [])])[0]
             for m in ('cdc', 'tgan')}
    if all(np.isfinite(v) for v in lpips.values()):
      text += (f"; intra-LPIPS CDC {lpips['cdc']:.3f} vs TGAN {lpips['tgan']:.3f}: "
               + ('agrees' if lpips['cdc'] > lpips['tgan'] else 'disagrees'))
    lines.append(f'- {t}: {text}')
  return lines


def write_table(path: str, rows: List[str], targets: Sequence[str],
                cells: Dict[tuple, List[dict]], notes: Dict[str, str], settings: dict) -> str:
  """table.md: rows methods, columns targets, cells 'FID-VGG a ± b / intra-LPIPS c ± d'
  ('FID' with Inception features)."""
  key = fid_key(settings)
  lines = [f'# Few-shot adaptation: {key} (lower is better) / intra-LPIPS (higher is '
           'more diverse)', '',
           f'Source `{settings["source"]}`, {settings["steps"]} steps, seeds '
           f'{_seeds_text(settings["seeds"], targets)} (mean ± std over seeds), '
           f'{settings["num_samples"]} evaluation samples (eval seed {settings["eval_seed"]}).',
           '',
           '| method | ' + ' | '.join(targets) + ' |',
           '|---|' + '---|' * len(targets)]
  for row in rows:
    lines.append(f'| {row} | ' + ' | '.join(_cell(cells.get((row, t), []), key)
                                            for t in targets) + ' |')
  lines += ['', f'{key} reference per column:']
  lines += [f'- {t}: {notes[t]}' for t in targets]
  features = (f'FID on Inception-v3 pool3 features (pytorch-fid weights '
              f'{settings["inception_weights"]}).' if settings.get('inception_weights')
              else evaluate.VGG_NOTE)
  lines += paper_agreement(cells, targets, key)
  lines += ['', f'{features} Intra-LPIPS: CDC\'s intra-cluster LPIPS around the '
            'few-shot training images.', '']
  return write_text(path, '\n'.join(lines))


def run_table(source: ModelBundle, *, methods: Sequence[str], targets: Sequence[str],
              seeds, steps: int, num_samples: int, out: str, eval_seed: int = 0,
              grid_cols: int = 8, eval_batch_size: int = 32,
              hparams: Optional[Dict[str, object]] = None,
              method_kwargs: Optional[Dict[str, dict]] = None, source_name: str = '',
              inception_weights: str = '', cells_dir: str = '') -> dict:
  """Adapts `source` with every method x target x seed, evaluates, writes the outputs.
  `seeds`: one list of training seeds for every target, or a dict target -> list.
  `inception_weights` (pytorch-fid's .pth): FID / KID on Inception features instead of
  VGG16's (the papers' metric; a table keeps one feature network throughout).
  `cells_dir`: where finished runs are kept (default OUT/cells)."""
  t_start = time.time()
  os.makedirs(out, exist_ok=True)
  cache = os.path.join(out, 'cache')
  hparams, method_kwargs = dict(hparams or {}), dict(method_kwargs or {})
  rate_log = _RateLog()
  log.addHandler(rate_log)
  level = log.level
  log.setLevel(logging.INFO)  # the handler needs the loop's progress lines
  res = source.config.resolution
  z_grid = evaluate.sample_latents(source, grid_cols, eval_seed)
  rows = ['source'] + list(methods)
  cells, notes, records, blocks, rates = {}, {}, [], [], {}
  settings = dict(source=source_name or source.source, methods=list(methods),
                  targets=list(targets),
                  seeds={t: seeds_of(seeds, t) for t in targets}, steps=steps,
                  num_samples=num_samples, eval_seed=eval_seed, hparams=hparams,
                  method_kwargs=method_kwargs, resolution=res,
                  inception_weights=os.path.basename(inception_weights or ''))
  extractor = evaluate.feature_extractor(inception_weights)
  done = open_cells(cells_dir or os.path.join(out, 'cells'), settings)
  # Each run trained here prints 'run k of n, about T left' (Cells.get).
  done.plan([cell_name(t, m, seed) for t in targets for m in methods for seed in seeds_of(seeds, t)])
  try:
    for target in targets:
      target_seeds = seeds_of(seeds, target)
      cfg0 = run_config_for(methods[0], target, steps, target_seeds[0], hparams, method_kwargs)
      _, images = loop.prepare(cfg0, bundle=source)
      reference = cfg0.eval.reference  # the run config's held-out set (common.offline_eval)
      if reference in ('', 'auto'):
        reference, _ = evaluate.default_sources(cfg0.data.source)
      ref = evaluate.as_source(reference, res)
      few = evaluate.as_source(cfg0.data.source, res)  # the training images, by name
      kw = dict(reference=ref, few_shot=few, num_samples=num_samples, seed=eval_seed,
                cache_dir=cache, batch_size=eval_batch_size, extractor=extractor)
      saved = done.load(cell_name(target, 'source', None))
      if saved is None:
        t0 = time.time()
        result = evaluate.evaluate(source, **kw)
        record = dict(result, method='source', target=target, train_seed=None,
                      train_seconds=0.0, eval_seconds=round(time.time() - t0, 1))
        samples = evaluate.generate_samples(source, z_grid, eval_seed, eval_batch_size)
        done.save(cell_name(target, 'source', None), record, samples)
        print(f'[{_elapsed(t_start)}] {target} source: {evaluate.summary(result)}', flush=True)
      else:
        record, samples = saved
        print(f'[{_elapsed(t_start)}] {target} source: done earlier', flush=True)
      cells[('source', target)] = [record]
      records.append(record)
      notes[target] = (f'{record["reference_kind"]} `{record["reference"]}` '
                       f'({record["reference_count"]} images)')
      if target in common.APPROX_REFERENCES:
        notes[target] += f' ({common.APPROX_REFERENCES[target][1]})'
      blocks.append((f'{target}: source', samples))
      for method in methods:
        for seed in target_seeds:
          name = cell_name(target, method, seed)
          # A workdir per run, so a killed table resumes the run from its last
          # checkpoint; removed once the run's cell is saved.
          work = os.path.join(out, 'runs', name)
          if done.has(name):
            print(f'[{_elapsed(t_start)}] {target} {method} seed {seed}: done earlier', flush=True)

          def train_and_score(method=method, seed=seed, work=work):
            config = run_config_for(method, target, steps, seed, hparams, method_kwargs)
            if 'ewc' in run_config.method_names(config):
              # EWC's Fisher depends on the source and the seed only: estimated (about
              # 1 h at 5,000 samples here) by the first run, reused bit-identically by the
              # other targets' and ewc+rick's (methods/ewc.py `fisher_cache`).
              config.method.kwargs['ewc'] = dict(config.method.kwargs.get('ewc', {}),
                                                 fisher_cache=cache)
            rate_log.rate = float('nan')
            t0 = time.time()
            _, adapted = loop.train(config, work, bundle=source, images=images)
            train_s = time.time() - t0
            t0 = time.time()
            result = evaluate.evaluate(adapted, **kw)
            eval_s = time.time() - t0
            record = dict(result, method=method, target=target, train_seed=seed,
                          train_seconds=round(train_s, 1), steps_per_second=rate_log.rate,
                          eval_seconds=round(eval_s, 1))
            samples = (evaluate.generate_samples(adapted, z_grid, eval_seed, eval_batch_size)
                       if seed == target_seeds[0] else None)
            print(f'[{_elapsed(t_start)}] {target} {method} seed {seed}: train {train_s:.0f}s '
                  f'({rate_log.rate:.2f} it/s), eval {eval_s:.0f}s | '
                  f'{evaluate.summary(result)}', flush=True)
            return record, samples

          record, samples = done.get(name, train_and_score)
          shutil.rmtree(work, ignore_errors=True)
          cells.setdefault((method, target), []).append(record)
          records.append(record)
          rates.setdefault(method, []).append(record.get('steps_per_second') or float('nan'))
          if seed == target_seeds[0] and samples is not None:
            blocks.append((f'{target}: {method}', samples))
  finally:
    log.removeHandler(rate_log)
    log.setLevel(level)
  total = time.time() - t_start
  table = write_table(os.path.join(out, 'table.md'), rows, targets, cells, notes, settings)
  grid = save_labeled_grid(os.path.join(out, 'grid.png'), blocks)
  key = fid_key(settings)
  summary = {row: {t: {'cell': _cell(cells.get((row, t), []), key),
                       key: _mean_std([r.get(key) for r in cells.get((row, t), [])]),
                       'intra-LPIPS': _mean_std([r.get(evaluate.INTRA_LPIPS)
                                                 for r in cells.get((row, t), [])])}
                   for t in targets} for row in rows}
  report = dict(settings=settings, seconds=round(total, 1), table=summary,
                steps_per_second={m: statistics.fmean(v) if all(np.isfinite(v)) else None
                                  for m, v in rates.items()},
                reference=notes, runs=records, files={'table': table, 'grid': grid})
  write_text(os.path.join(out, 'results.json'),
             json.dumps(finite(report), indent=2, default=str))
  return report


# Checkpoint cadence of a table's runs (at most every 100 steps, twice per run at least).
RUN_CHECKPOINT_EVERY = 100

# Settings a finished cell depends on; a rerun into the same --out must keep them.
CELL_SETTINGS = ('source', 'steps', 'num_samples', 'eval_seed', 'hparams', 'method_kwargs',
                 'resolution', 'inception_weights')
# The value of a setting added later, for tables saved before it existed.
CELL_DEFAULTS = {'inception_weights': ''}


def open_cells(cells_dir: str, settings: dict) -> Cells:
  """The table's finished runs (fsig_jax.utils.cells) under the settings they depend on."""
  return Cells(cells_dir, {k: settings[k] for k in CELL_SETTINGS}, CELL_DEFAULTS,
               '--out (or --cells)')


def cell_name(target: str, method: str, seed) -> str:
  """A run's cell (fsig_jax.utils.cells): `TARGET.METHOD.seedN`."""
  return f'{target}.{method}.seed{seed}'


def estimate_seconds(report: dict, *, steps: int, num_samples: int, runs: int,
                     targets: int) -> float:
  """Run time of another setting from a report's measured runs (same methods, machine).

  Per method: the measured per-run overhead (a compile-cached run's time minus
  its steps at the measured rate) plus `steps` at that rate, and the measured
  evaluation time scaled linearly in the sample count; per target the source
  evaluation, likewise scaled. Compilation (once per method) is added as
  measured. Method-specific init that grows with the setting (EWC's Fisher
  samples) is not modelled. `runs`: each method's runs (target x seed pairs).
  """
  s = report['settings']
  total = 0.0
  for method in s['methods']:
    runs = [r for r in report['runs'] if r['method'] == method and r['target'] == s['targets'][0]]
    rate = report['steps_per_second'].get(method)
    if not runs or not rate:
      return float('nan')
    cached = runs[1:] or runs
    overhead = max(np.mean([r['train_seconds'] for r in cached]) - s['steps'] / rate, 0.0)
    compile_s = max(runs[0]['train_seconds'] - np.mean([r['train_seconds'] for r in cached]), 0.0)
    eval_s = np.mean([r['eval_seconds'] for r in runs]) * num_samples / s['num_samples']
    total += compile_s + runs * (overhead + steps / rate + eval_s)
  source = [r['eval_seconds'] for r in report['runs'] if r['method'] == 'source']
  total += targets * float(np.mean(source)) * num_samples / s['num_samples']
  return total


def seeds_per_target(targets: Sequence[str], seeds: Optional[str], real_seeds: Optional[str],
                     preset: dict) -> Dict[str, List[int]]:
  """Each target's training seeds from --seeds / --real_seeds: the derived targets
  (held-out test set) take --seeds, the real ten-shot sets --real_seeds, else
  --seeds when given, else the preset's (full setting: 0,1,2 and 0)."""
  main = parse_seeds(seeds or preset['seeds'], '--seeds')
  if real_seeds:
    real = parse_seeds(real_seeds, '--real_seeds')
  else:
    real = main if seeds else parse_seeds(preset.get('real_seeds') or preset['seeds'])
  return {t: main if t in common.DERIVED else real for t in targets}


def _elapsed(t0: float) -> str:
  s = int(time.time() - t0)
  return f'{s // 60}:{s % 60:02d}'


def main(argv):
  del argv
  from fsig_jax.utils.logs import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs()
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.get_absl_handler().setLevel(logging.WARNING)  # one printed line per run
  preset = QUICK if QUICK_FLAG.value else FULL
  spec = SOURCE.value or common.ANIME64  # a missing path fails in load_source, clearly
  methods = [m for m in (METHODS.value or preset['methods']).split(',') if m]
  targets = [t for t in (TARGETS.value or preset['targets']).split(',') if t]
  try:
    seeds = seeds_per_target(targets, SEEDS.value, REAL_SEEDS.value, preset)
    hparams = parse_overrides(HPARAMS.value)
    unknown = [t for t in targets if t not in common.TARGETS + tuple(common.DERIVED)]
    if unknown:
      raise ValueError(f'unknown target(s) {unknown}; choose from '
                       f'{common.TARGETS + tuple(common.DERIVED)}')
    for m in methods:  # fail now, not after hours of the other methods
      get_method(run_config.method_names(run_config_for(m, targets[0], 1, 0, hparams, {})))
    # Compiled steps are reused across seeds (and reruns) through the persistent cache.
    if not jax.config.jax_compilation_cache_dir:
      jax.config.update('jax_compilation_cache_dir', os.path.join(OUT.value, 'xla_cache'))
      jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
    source = load_source(spec)
    report = run_table(source, methods=methods, targets=targets, seeds=seeds,
                       steps=STEPS.value or preset['steps'],
                       num_samples=NUM.value or preset['num_samples'], out=OUT.value,
                       eval_seed=EVAL_SEED.value, grid_cols=GRID_COLS.value, hparams=hparams,
                       method_kwargs=preset.get('method_kwargs'), source_name=spec,
                       inception_weights=INCEPTION.value, cells_dir=CELLS.value)
  except (FsigError, ValueError) as e:
    fail(str(e))
  print(open(report['files']['table']).read())
  print(f'wrote {OUT.value}/table.md, results.json, grid.png in {report["seconds"] / 60:.1f} min')
  if QUICK_FLAG.value:
    full = seeds_per_target(FULL['targets'].split(','), None, None, FULL)
    est = estimate_seconds(report, steps=FULL['steps'], num_samples=FULL['num_samples'],
                           runs=sum(len(s) for s in full.values()), targets=len(full))
    print(f'estimated time of the full setting on this machine (same methods): '
          f'{est / 3600:.1f} h (steps, samples, seeds and targets scaled from these runs)')


if __name__ == '__main__':
  run_main(main)
