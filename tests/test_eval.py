"""The evaluation suite: evaluate(), models from workdirs, periodic eval, launch/eval.py,
benchmarks/fsig_table.py, and clear errors for bad evaluation inputs."""
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, shared_path
from engine_utils import leaves_with_paths, tiny_bundle, tiny_images
from test_engine_loop import tiny_config
from fsig_jax import run as run_lib
from fsig_jax.convert.errors import CheckpointError
from fsig_jax.convert.load import load_pretrained, save_bundle as fsig_jax_save_bundle
from fsig_jax.engine import export, loop, run_config
from fsig_jax.metrics import evaluate, features, fid, image_sources
from fsig_jax.utils.images import make_grid, to_uint8


BATCH = 8  # one batch size everywhere: each network compiles for one shape


def write_pngs(folder, images):
  folder.mkdir(parents=True, exist_ok=True)
  for i, im in enumerate(to_uint8(images)):
    Image.fromarray(im).save(folder / f'{i:02d}.png')
  return folder


def run(*args):
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A finished 4-step tiny run on a folder of 8 images, evaluated at steps 3 (eval_every)
  and 4 (the last step is always evaluated)."""
  tmp = tmp_path_factory.mktemp('run')
  c = tiny_config(4, eval_every=3)
  c.data.source = str(write_pngs(tmp / 'shots', tiny_images(8)))
  c.eval.num_samples = 16
  c.eval.metrics = 'kid_vgg'  # FID-VGG and intra-LPIPS are covered below (each costs seconds)
  c.eval.batch_size = BATCH
  wd = tmp / 'wd'
  _, adapted = loop.train(c, str(wd), bundle=tiny_bundle())
  return wd, adapted


def _finite(result, *keys):
  return all(np.isfinite(result[k]) for k in keys)


def test_evaluate_returns_labelled_finite_numbers_and_caches(tmp_path, monkeypatch):
  bundle = tiny_bundle()
  ref = write_pngs(tmp_path / 'test', tiny_images(8, seed=5))
  shots = tiny_images(3, seed=7)
  cache = tmp_path / 'cache'
  r = evaluate.evaluate(bundle, reference=str(ref), few_shot=shots, num_samples=16, seed=0,
                        cache_dir=str(cache), batch_size=BATCH)
  assert r['metrics'] == ['FID-VGG', 'KID-VGG', 'intra-LPIPS', 'intra-LPIPS_std']
  assert _finite(r, 'FID-VGG', 'KID-VGG', 'intra-LPIPS') and r['FID-VGG'] > 0
  assert 0 < r['intra-LPIPS'] < 1 and sum(r['intra_lpips_cluster_sizes']) == 16
  assert (r['num_samples'], r['reference_count'], r['few_shot_count']) == (16, 8, 3)
  assert r['reference_kind'] == evaluate.REF_HELD_OUT and r['reference'] == str(ref)
  assert r['feature_network'] == 'vgg16-lpips' and 'not Inception' in ' '.join(r['notes'])
  names = sorted(os.listdir(cache))  # features and statistics, keyed by the network
  assert [n.split('_')[0] for n in names] == ['vgg16-lpips'] * 2
  assert [n.rsplit('_', 1)[1] for n in names] == ['features.npz', 'stats.npz']
  json.dumps(evaluate.json_ready(r), allow_nan=False)

  # Second run: the reference comes from the cache (the images are never read again),
  # and the same seed scores the same samples.
  def no_loading(*a, **k):
    raise AssertionError('reference images were loaded despite the cache')
  monkeypatch.setattr(image_sources, 'load_images', no_loading)  # the one loader of sources
  again = evaluate.evaluate(bundle, reference=str(ref), num_samples=16, seed=0,
                            metrics='fid_vgg,kid_vgg', cache_dir=str(cache), batch_size=BATCH)
  assert again['FID-VGG'] == pytest.approx(r['FID-VGG'], rel=1e-6)
  assert again['KID-VGG'] == pytest.approx(r['KID-VGG'], rel=1e-6)
  monkeypatch.undo()
  # Without a reference the few-shot images are the reference, and the result says so.
  few = evaluate.evaluate(bundle, few_shot=tiny_images(8), num_samples=16, metrics='kid_vgg',
                          batch_size=BATCH)
  assert few['reference_kind'] == evaluate.REF_FEW_SHOT and few['metrics'] == ['KID-VGG']


def test_latents_are_prefix_stable():
  b = tiny_bundle()
  np.testing.assert_array_equal(evaluate.sample_latents(b, 3, 1),
                                evaluate.sample_latents(b, 7, 1)[:3])


def test_default_sources():
  assert evaluate.default_sources('derived:anime_sketch:train10') == (
      'derived:anime_sketch:test', 'derived:anime_sketch:train10')
  shots = tiny_images(10)
  ref, few = evaluate.default_sources(shots)
  assert ref is None and few is shots
  assert evaluate.default_sources('derived:anime_sketch:train10', reference='', few_shot='') == (
      None, None)


def test_config_eval_settings():
  sys.path.insert(0, str(ROOT))
  from configs import offline, pretrain_anime64  # pylint: disable=g-import-not-at-top
  sketch = offline.get_config('cdc,anime_sketch')
  assert sketch.eval_every == 500 and sketch.eval.num_samples == 1000
  assert evaluate.default_sources(sketch.data.source, sketch.eval.reference,
                                  sketch.eval.few_shot) == (
      'derived:anime_sketch:test', 'derived:anime_sketch:train10')
  babies = offline.get_config('tgan,babies')  # no test set: intra-LPIPS, FID-VGG vs the shots
  assert babies.eval.reference == '' and babies.eval.few_shot == 'auto'
  pre = pretrain_anime64.get_config()
  assert pre.eval_every == 5000 and pre.eval.num_samples == 2000 and pre.eval.few_shot == ''
  assert pre.eval.reference.endswith(os.path.join('anime_faces_64', 'test'))
  assert "eval" in run_lib.RESUMABLE_CHANGES and "eval_every" in run_lib.RESUMABLE_CHANGES


def test_periodic_eval_writes_jsonl(workdir):
  wd, _ = workdir
  lines = [json.loads(l) for l in (wd / 'eval' / 'metrics.jsonl').read_text().splitlines()]
  assert [l['step'] for l in lines] == [3, 4]
  for l in lines:
    assert np.isfinite(l['KID-VGG']) and l['num_samples'] == 16
    assert l['reference_kind'] == evaluate.REF_FEW_SHOT and l['reference_count'] == 8
  assert json.loads((wd / 'config.json').read_text())['eval']['metrics'] == 'kid_vgg'


def test_periodic_eval_checks_its_data_before_training(tmp_path):
  c = tiny_config(2, eval_every=1)
  c.eval.reference = str(tmp_path / 'missing')
  with pytest.raises(run_config.ConfigError, match=r'config.eval: .*missing.*does not exist'):
    loop.train(c, str(tmp_path / 'wd'), bundle=tiny_bundle(), images=tiny_images(8))
  assert not (tmp_path / 'wd' / 'checkpoints').exists()


def test_bundle_from_workdir_model_and_checkpoints(workdir, tmp_path):
  wd, adapted = workdir
  z = np.asarray(evaluate.sample_latents(adapted, 4, 0))
  want = np.asarray(adapted.generate(z))
  bundle, step = export.bundle_from_workdir(str(wd))
  assert step == 4 and 'model/' in bundle.source
  np.testing.assert_array_equal(np.asarray(bundle.generate(z)), want)

  # Checkpoints only (a run still training): the newest, or the asked-for step.
  live = tmp_path / 'live'
  shutil.copytree(wd, live, ignore=shutil.ignore_patterns('model', 'run.json'))
  bundle, step = export.bundle_from_workdir(str(live))
  assert step == 4 and 'checkpoint at step 4' in bundle.source
  np.testing.assert_allclose(np.asarray(bundle.generate(z)), want, atol=1e-6)
  assert set(bundle.nets) == {'G_ema', 'G', 'D'}
  bundle.discriminate(np.asarray(want))
  b2, step = export.bundle_from_workdir(str(live), step=2)
  assert step == 2 and not np.allclose(np.asarray(b2.generate(z)), want)
  with pytest.raises(CheckpointError, match=r'no checkpoint at step 3; it has steps \[2, 4\]'):
    export.bundle_from_workdir(str(live), step=3)
  with pytest.raises(CheckpointError, match='no config.json'):
    export.bundle_from_workdir(str(tmp_path))


def test_eval_cli_writes_json_and_grid(workdir):
  wd, _ = workdir
  r = run('launch/eval.py', f'--workdir={wd}', '--num_samples=16', '--metrics=fid_vgg,kid_vgg',
          '--grid=6', f'--batch_size={BATCH}')
  assert r.returncode == 0, r.stderr[-3000:]
  out = json.loads((wd / 'eval' / 'metrics_step4.json').read_text())
  assert out['step'] == 4 and _finite(out, 'FID-VGG', 'KID-VGG')
  assert out['reference_kind'] == evaluate.REF_FEW_SHOT  # a 10-shot-like run, no test set
  # Same model, samples and reference as the periodic evaluation at step 4.
  last = json.loads((wd / 'eval' / 'metrics.jsonl').read_text().splitlines()[-1])
  assert out['KID-VGG'] == pytest.approx(last['KID-VGG'], rel=1e-6)
  grid = np.asarray(Image.open(wd / 'eval' / 'metrics_step4.png'))
  assert grid.shape == (2 + 2 * 18, 2 + 3 * 18, 3)  # 6 samples of 16 px, 3 per row
  assert 'FID-VGG' in r.stdout and 'wrote' in r.stdout


def test_real_floor_of_a_set_against_itself_is_zero(tmp_path):
  folder = write_pngs(tmp_path / 'faces', tiny_images(8, seed=11))
  other = write_pngs(tmp_path / 'other', tiny_images(8, seed=12))
  same = evaluate.real_floor(folder, folder, num_images=8, resolution=16, batch_size=BATCH)
  diff = evaluate.real_floor(folder, other, num_images=8, resolution=16, batch_size=BATCH)
  assert abs(same['FID-VGG']) < 1e-2 and diff['FID-VGG'] > 1.0, (same, diff)
  assert same['num_images'] == 8 and same['reference_count'] == 8
  with pytest.raises(evaluate.DataError, match='has 8 images; the floor needs num_images=9'):
    evaluate.real_floor(folder, other, num_images=9, resolution=16)


def test_release_model_writes_model_card(workdir, tmp_path):
  """launch/release_model.py: shipped G_ema exact, D in float16, card numbers as computed."""
  wd, adapted = workdir
  ref = write_pngs(tmp_path / 'held_out', tiny_images(8, seed=5))
  out = tmp_path / 'model'
  r = run('launch/release_model.py', f'--workdir={wd}', f'--out={out}', f'--reference={ref}',
          '--num_samples=8', '--hardware=test machine', f'--cache_dir={tmp_path / "cache"}')
  assert r.returncode == 0, r.stderr[-3000:]
  shipped = load_pretrained(str(out))
  assert sorted(shipped.nets) == ['D', 'G_ema']
  for k, v in leaves_with_paths(adapted.nets['G_ema']).items():
    np.testing.assert_array_equal(leaves_with_paths(shipped.nets['G_ema'])[k], v, err_msg=k)
  for k, v in leaves_with_paths(adapted.nets['D']).items():
    got = leaves_with_paths(shipped.nets['D'])[k]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, v.astype(np.float16).astype(np.float32), err_msg=k)
  card = json.loads((out / 'card.json').read_text())
  # The card shows no path of the machine that trained it: the workdir is a placeholder.
  assert '--workdir=WORKDIR' in card['command'] and str(wd) not in json.dumps(card)
  assert card['training']['steps'] == 4 and card['training']['processes'] == 1
  assert card['training']['images_seen'] == 4 * card['hparams']['batch_size']
  assert card['training']['seconds'] > 0 and card['hardware'] == 'test machine'
  model, floor = card['model_scores'], card['floor_scores']
  assert _finite(model, 'FID-VGG', 'KID-VGG') and _finite(floor, 'FID-VGG', 'KID-VGG')
  text = (out / 'MODEL_CARD.md').read_text()
  assert f"| FID-VGG | {model['FID-VGG']:.4g} | {floor['FID-VGG']:.4g} |" in text
  assert np.asarray(Image.open(out / 'samples.png')).shape == (2 + 8 * 18, 2 + 8 * 18, 3)
  # Scores are of the shipped (float16-D) model, from the same latents as launch/eval.py.
  again = evaluate.evaluate(shipped, reference=str(ref), num_samples=8, metrics='fid_vgg',
                            batch_size=32)
  assert again['FID-VGG'] == pytest.approx(model['FID-VGG'], rel=1e-5)
  r = run('launch/release_model.py', f'--workdir={wd}', f'--out={out}', f'--reference={ref}')
  assert r.returncode == 2 and 'exists; pass --overwrite' in r.stderr, r.stderr[-2000:]
  assert 'Traceback' not in r.stderr
  # A run that continued this release: its card lists the release as stage 1 and adds up.
  r = run('launch/release_model.py', f'--workdir={wd}', f'--out={out}', f'--reference={ref}',
          '--num_samples=8', '--hardware=gpu box', f'--continues={out / "card.json"}',
          '--training_seconds=30', '--train_config=configs/pretrain_anime64.py:batch=32',
          '--overwrite', f'--cache_dir={tmp_path / "cache"}')
  assert r.returncode == 0, r.stderr[-3000:]
  card2 = json.loads((out / 'card.json').read_text())
  (stage,) = card2['stages']
  assert stage['steps'] == 4 and stage['hardware'] == 'test machine'
  assert stage['seconds'] == card['training']['seconds']
  assert card2['total'] == {'steps': 8, 'images_seen': 2 * card['training']['images_seen'],
                            'seconds': pytest.approx(card['training']['seconds'] + 30)}
  assert 'pretrain_anime64.py:batch=32' in card2['training']['command']
  assert '--config.model.checkpoint=' in card2['training']['command']
  text = (out / 'MODEL_CARD.md').read_text()
  assert 'In 2 stages, 8 steps' in text and '1. (released' in text
  assert '2. (this release) 4 steps' in text and 'gpu box' in text
  r = run('launch/release_model.py', f'--workdir={wd}', f'--out={tmp_path / "m3"}',
          f'--reference={ref}', f'--continues={ref}')
  assert r.returncode == 2 and 'not a release card.json' in r.stderr, r.stderr[-2000:]


def test_eval_cli_bad_inputs_one_line(tmp_path):
  png = write_pngs(tmp_path / 'imgs', tiny_images(1)) / '00.png'
  for args, message in [
      ([f'--workdir={tmp_path / "nope"}'], 'does not exist'),
      ([f'--checkpoint={png}', '--few_shot=x'], 'unknown checkpoint format'),
      ([f'--checkpoint={png}'], '--checkpoint needs --reference'),
  ]:
    r = run('launch/eval.py', *args)
    assert r.returncode == 2, (args, r.stderr[-2000:])
    assert 'Traceback' not in r.stderr and 'fsig-jax: error:' in r.stderr, r.stderr[-2000:]
    assert message in r.stderr, (message, r.stderr[-2000:])


# ----------------------------------------------------------------------------- bad inputs


def test_too_few_samples_for_a_covariance():
  b = tiny_bundle()
  with pytest.raises(ValueError, match='num_samples must be at least 2, got 1'):
    evaluate.evaluate(b, few_shot=tiny_images(4), num_samples=1, metrics='fid_vgg')
  with pytest.raises(ValueError, match='array of 1 images has 1 image.s., at least 2 are needed'):
    evaluate.evaluate(b, reference=tiny_images(1), num_samples=4, metrics='fid_vgg')


def test_images_of_mixed_sizes():
  mixed = [np.zeros((16, 16, 3), np.float32), np.zeros((32, 32, 3), np.float32)]
  with pytest.raises(ValueError, match=r'mixed sizes .*\(1 x \(16, 16, 3\), 1 x \(32, 32, 3\)\)'):
    evaluate.evaluate(tiny_bundle(), reference=mixed, num_samples=4)


def test_statistics_from_another_feature_network(tmp_path):
  other = features.FeatureExtractor('other-net', 3, lambda x: x.mean(axis=(1, 2)))
  b = tiny_bundle()
  evaluate.evaluate(b, reference=tiny_images(4), num_samples=4, metrics='fid', extractor=other,
                    cache_dir=str(tmp_path), batch_size=BATCH)
  stats_file = next(p for p in tmp_path.iterdir() if p.name.endswith('_stats.npz'))
  with pytest.raises(ValueError, match="computed with feature network 'other-net', not "
                                       "'vgg16-lpips'"):
    evaluate.evaluate(b, reference=str(stats_file), num_samples=4, batch_size=BATCH)
  # The same file with its own network works, and KID is refused with the reason.
  r = evaluate.evaluate(b, reference=str(stats_file), num_samples=4, extractor=other,
                        batch_size=BATCH)
  assert r['metrics'] == ['FID[other-net]'] and r['reference_kind'] == evaluate.REF_STATS
  with pytest.raises(ValueError, match='only their mean and covariance'):
    evaluate.evaluate(b, reference=str(stats_file), num_samples=4, extractor=other,
                      metrics='fid,kid')
  with pytest.raises(ValueError, match='computed at 16px, but the images to compare are 32px'):
    fid.load_stats_file(str(stats_file), feature_name='other-net', resolution=32)


def test_metric_without_its_data():
  with pytest.raises(ValueError, match='intra_lpips needs the few-shot training images'):
    evaluate.evaluate(tiny_bundle(), reference=tiny_images(4), metrics='intra_lpips')
  with pytest.raises(ValueError, match="Unknown metric 'fdi'"):
    evaluate.evaluate(tiny_bundle(), reference=tiny_images(4), metrics='fdi')


# ----------------------------------------------------------------------------- the table


@functools.lru_cache(maxsize=None)
def _fsig_table():
  """benchmarks/fsig_table.py as a module, loaded once per process (it defines absl
  flags, which a second load would define twice)."""
  spec = importlib.util.spec_from_file_location('fsig_table', ROOT / 'benchmarks' / 'fsig_table.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow
def test_fsig_table_tiny(tmp_path, capsys):
  shared_path('data', 'ten_shot', 'babies')
  table = _fsig_table()
  out = tmp_path / 'table'
  report = table.run_table(tiny_bundle(), methods=['tgan'], targets=['babies'], seeds=[0, 1],
                           steps=2, num_samples=16, out=str(out), grid_cols=4,
                           eval_batch_size=BATCH,
                           hparams={'d_reg_every': 2, 'g_reg_every': 2})
  md = (out / 'table.md').read_text()
  assert '| method | babies |' in md
  rows = [l.split('|')[1].strip() for l in md.splitlines() if l.startswith('| ') and
          not l.startswith('| method')]
  assert rows == ['source', 'tgan']
  tgan = next(l for l in md.splitlines() if l.startswith('| tgan'))
  assert re.search(r'\| [0-9.]+ ± [0-9.]+ / 0\.\d{3} ± 0\.\d{3} \|', tgan), tgan
  assert 'babies: few-shot training images' in md and 'FID-VGG' in md
  results = json.loads((out / 'results.json').read_text())
  assert [(r['method'], r['train_seed']) for r in results['runs']] == [
      ('source', None), ('tgan', 0), ('tgan', 1)]
  assert report['table']['tgan']['babies']['cell'] in tgan
  printed = capsys.readouterr().out
  assert 'seed 0: train' in printed and 'run 1 of 2, about ' in printed, printed
  assert 'run 2 of 2, about 0 min left' in printed, printed
  grid = Image.open(out / 'grid.png')
  assert grid.size[1] == 2 + 2 * 18  # two rows (source, tgan) of 16 px samples

  # A rerun trains nothing: every run is read back from the cells, here by another
  # table (--out) that shares them (--cells); the same --out reads OUT/cells.
  def no_training(*a, **k):
    raise AssertionError('a finished run was trained again')
  trained = table.loop.train
  table.loop.train = no_training
  other = tmp_path / 'other'
  try:
    again = table.run_table(tiny_bundle(), methods=['tgan'], targets=['babies'], seeds=[0, 1],
                            steps=2, num_samples=16, out=str(other), grid_cols=4,
                            eval_batch_size=BATCH, cells_dir=str(out / 'cells'),
                            hparams={'d_reg_every': 2, 'g_reg_every': 2})
  finally:
    table.loop.train = trained
  assert json.dumps(again['table']) == json.dumps(report['table'])
  assert (other / 'table.md').read_text() == md and not (other / 'cells').exists()
  assert np.array_equal(np.asarray(Image.open(other / 'grid.png')), np.asarray(grid))
  # ...and refuses to mix settings in one table.
  with pytest.raises(ValueError, match=r'other settings \(steps'):
    table.run_table(tiny_bundle(), methods=['tgan'], targets=['babies'], seeds=[0], steps=3,
                    num_samples=16, out=str(out), grid_cols=4, eval_batch_size=BATCH,
                    hparams={'d_reg_every': 2, 'g_reg_every': 2})


def test_fsig_table_cells_keep_grid_pixels(tmp_path):
  """A cell stores its grid row as the grid's own 8-bit pixels: read back, it tiles to
  the same grid as the float samples; a float32 cell of an older table still loads."""
  table = _fsig_table()
  settings = dict(source='s', methods=['tgan'], targets=['babies'], seeds=[0], steps=2,
                  num_samples=16, eval_seed=0, hparams={}, method_kwargs={}, resolution=16,
                  inception_weights='')
  cells = table.open_cells(str(tmp_path / 'cells'), settings)
  name = table.cell_name('babies', 'tgan', 0)
  samples = np.random.default_rng(0).uniform(-1.1, 1.1, (8, 16, 16, 3)).astype(np.float32)
  cells.save(name, {'FID-VGG': 1.0}, samples)
  stored = np.load(tmp_path / 'cells' / 'babies.tgan.seed0.npz')['samples']
  assert stored.dtype == np.uint8
  record, back = cells.load(name)
  assert record == {'FID-VGG': 1.0} and back.dtype == np.float32
  assert np.array_equal(make_grid(back), make_grid(samples))
  np.savez(tmp_path / 'cells' / 'babies.tgan.seed1.npz', samples=samples)  # older cells
  (tmp_path / 'cells' / 'babies.tgan.seed1.json').write_text('{}')
  assert np.array_equal(cells.load(table.cell_name('babies', 'tgan', 1))[1], samples)


def test_fsig_table_feature_network_is_a_cell_setting(tmp_path):
  """--inception_weights labels the table 'FID' and is a setting of every cell: a table
  saved before the setting existed resumes with VGG16 features, never with Inception."""
  table = _fsig_table()
  settings = dict(source='s', methods=['tgan'], targets=['babies'], seeds=[0], steps=2,
                  num_samples=16, eval_seed=0, hparams={}, method_kwargs={}, resolution=16,
                  inception_weights='')
  cells = table.open_cells(str(tmp_path / 'cells'), settings)
  cells.save(table.cell_name('babies', 'tgan', 0), {'FID-VGG': 1.0})
  saved = json.loads((tmp_path / 'cells' / 'settings.json').read_text())
  del saved['inception_weights']  # as written before the setting existed
  (tmp_path / 'cells' / 'settings.json').write_text(json.dumps(saved))
  table.open_cells(str(tmp_path / 'cells'), settings)  # resumes
  with pytest.raises(ValueError, match=r'other settings \(inception_weights'):
    table.open_cells(str(tmp_path / 'cells'), dict(settings, inception_weights='pt_inception.pth'))
  md = table.write_table(str(tmp_path / 't.md'), ['tgan'], ['babies'],
                         {('tgan', 'babies'): [{'FID': 12.5, 'intra-LPIPS': 0.5}]},
                         {'babies': 'x'}, dict(settings, inception_weights='pt.pth'))
  text = open(md).read()
  assert '# Few-shot adaptation: FID (lower' in text and '| 12.5 / 0.500 |' in text
  assert 'Inception-v3' in text and 'VGG16' not in text


def test_fsig_table_seeds_per_target(tmp_path):
  """The full table trains 3 seeds on anime_sketch (held-out test set) and one on the
  real ten-shot sets (issue 19); --seeds alone applies to every target; the header
  names each target's seeds."""
  table = _fsig_table()
  targets = ['anime_sketch', 'babies', 'sketches']
  assert table.seeds_per_target(targets, None, None, table.FULL) == {
      'anime_sketch': [0, 1, 2], 'babies': [0], 'sketches': [0]}
  assert table.seeds_per_target(targets, '0-2', None, table.FULL)['sketches'] == [0, 1, 2]
  assert table.seeds_per_target(targets, '4', '5,6', table.FULL) == {
      'anime_sketch': [4], 'babies': [5, 6], 'sketches': [5, 6]}
  assert table.seeds_per_target(['anime_sketch'], None, None, table.QUICK) == {
      'anime_sketch': [0, 1]}
  with pytest.raises(ValueError, match='--real_seeds'):
    table.seeds_per_target(targets, None, 'x', table.FULL)
  settings = dict(source='s', steps=2, num_samples=16, eval_seed=0, inception_weights='',
                  seeds={'anime_sketch': [0, 1, 2], 'babies': [0]})
  md = open(table.write_table(str(tmp_path / 't.md'), ['tgan'], ['anime_sketch', 'babies'],
                              {}, {'anime_sketch': 'a', 'babies': 'b'}, settings)).read()
  assert 'seeds anime_sketch [0, 1, 2], babies [0] (mean' in md
  md = open(table.write_table(str(tmp_path / 't.md'), ['tgan'], ['babies'], {}, {'babies': 'b'},
                              dict(settings, seeds=[0, 1]))).read()
  assert 'seeds [0, 1] (mean' in md


# ------------------------------------------------------- paper-comparable FID / KID (Inception)


def _inception_file(tmp_path):
  """A file in pytorch-fid's weight layout (torch.save of the state dict), random weights."""
  import torch_writer  # pylint: disable=g-import-not-at-top
  from fsig_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  from goldens.make_inception_golden import random_state_dict  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'pt_inception-2015-12-05-test.pth'
  torch_writer.save(random_state_dict(inception.expected_state_dict_shapes()), path)
  return path


def test_fid_kid_on_inception_from_pytorch_fid_weights(tmp_path):
  """feature_extractor(weights file) scores 'KID' / 'FID' (no VGG label or note); KID
  equals kid computed by hand on the extractor's features of the same samples. (FID
  itself is not computed here: a 2048-d sqrtm costs about a minute on a small CPU.)"""
  from fsig_jax.metrics import kid  # pylint: disable=g-import-not-at-top
  from test_export_rosinality import random_bundle  # pylint: disable=g-import-not-at-top
  ext = evaluate.feature_extractor(_inception_file(tmp_path))
  assert ext.name == 'inception-v3-fid-2015-12-05' and ext.label == 'FID'
  assert evaluate.feature_extractor('').name == features.VGG16_NAME
  bundle, ref = random_bundle(), tiny_images(2, seed=7)  # (no init to compile)
  assert evaluate.resolve_metrics('fid,kid', ext, evaluate.as_source(ref, 16), None) == (
      'fid', 'kid')
  r = evaluate.evaluate(bundle, reference=ref, num_samples=2, metrics='kid', batch_size=2,
                        extractor=ext)
  assert r['metrics'] == ['KID'] and r['feature_network'] == ext.name
  assert not any('VGG' in n for n in r.get('notes', []))
  samples = evaluate.generate_samples(bundle, evaluate.sample_latents(bundle, 2, 0), 0, 2)
  gen = features.extract_features(ext, samples, 2)
  real = features.extract_features(ext, ref, 2)
  assert r['KID'] == pytest.approx(kid.kernel_inception_distance(gen, real, seed=0), rel=1e-5)
  with pytest.raises(ValueError, match="'fid_vgg' means VGG16 features"):
    evaluate.evaluate(bundle, reference=ref, num_samples=2, metrics='fid_vgg', extractor=ext)


def test_inception_weights_setting_is_checked_before_training(tmp_path):
  from test_export_rosinality import random_bundle  # pylint: disable=g-import-not-at-top
  c = tiny_config(2, eval_every=1)
  c.eval.inception_weights = str(tmp_path / 'pt_inception.pth')
  with pytest.raises(run_config.ConfigError,
                     match=r'config.eval: Inception weights .*pt_inception.pth: no such file'):
    loop.train(c, str(tmp_path / 'wd'), bundle=random_bundle(), images=tiny_images(8))
  r = run('launch/eval.py', f'--workdir={tmp_path / "nope"}', '--inception_weights=x.pth')
  assert r.returncode == 2 and 'Traceback' not in r.stderr
  png = write_pngs(tmp_path / 'imgs', tiny_images(2))
  model = tmp_path / 'model'
  fsig_jax_save_bundle(random_bundle(), str(model))
  r = run('launch/eval.py', f'--checkpoint={model}', f'--reference={png}', '--metrics=fid',
          f'--inception_weights={tmp_path / "missing.pth"}')
  assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert 'missing.pth: no such file' in r.stderr


def test_paper_configs_evaluate_with_supplied_folder_and_weights():
  """configs/paper_*.py (and rick_* / adam_* built on them): 5,000 samples; the
  reference folder and the Inception weights are the user's to supply."""
  sys.path.insert(0, str(ROOT))
  from configs import adam_babies, paper_afhq, paper_ffhq256, rick_afhq_cat  # pylint: disable=g-import-not-at-top
  for c in (paper_ffhq256.get_config('cdc,babies'), paper_afhq.get_config('tgan,cat'),
            rick_afhq_cat.get_config(''), adam_babies.get_config()):
    assert c.eval.num_samples == 5000 and c.eval.reference == ''
    assert c.eval.inception_weights == '' and c.eval.few_shot == 'auto'
  assert run_config.default_config().eval.inception_weights == ''


def test_eval_cli_reads_inception_weights_from_the_run_config(workdir, tmp_path):
  wd, _ = workdir
  copy = tmp_path / 'wd'
  shutil.copytree(wd, copy, ignore=shutil.ignore_patterns('checkpoints', 'eval'))
  cfg = json.loads((copy / 'config.json').read_text())
  cfg['eval']['inception_weights'] = str(tmp_path / 'from_config.pth')
  (copy / 'config.json').write_text(json.dumps(cfg))
  r = run('launch/eval.py', f'--workdir={copy}', '--num_samples=2')
  assert r.returncode == 2 and 'from_config.pth: no such file' in r.stderr, r.stderr[-2000:]
  r = run('launch/eval.py', f'--workdir={copy}', '--num_samples=2', '--metrics=kid',
          f'--inception_weights={tmp_path / "from_flag.pth"}')
  assert r.returncode == 2 and 'from_flag.pth: no such file' in r.stderr, r.stderr[-2000:]


def test_fsig_table_order_against_the_papers():
  table = _fsig_table()
  paper = table.RICK_TABLE1_BABIES_FID
  # The paper's own numbers agree with themselves; reversed, tau is -1 and every pair flips.
  assert table.kendall_tau(paper, paper) == (1.0, 10, [])
  tau, n, flipped = table.kendall_tau({m: -v for m, v in paper.items()}, paper)
  assert (tau, n, len(flipped)) == (-1.0, 10, 45)
  # By hand: ours tgan 60 < rick 70 < cdc 80 (paper: rick 39.4 < cdc 69.1 < tgan 101.6):
  # pairs (tgan, rick) and (tgan, cdc) flip, (rick, cdc) agrees: tau = (1 - 2) / 3.
  ours = {'tgan': 60.0, 'rick': 70.0, 'cdc': 80.0, 'kd_fsig': 1.0, 'adam': float('nan')}
  tau, n, flipped = table.kendall_tau(ours, paper)
  assert n == 3 and tau == pytest.approx(-1 / 3) and sorted(flipped) == [
      ('tgan', 'cdc'), ('tgan', 'rick')]
  cells = {('tgan', 'x'): [{'FID-VGG': 60.0, 'intra-LPIPS': 0.40}],
           ('cdc', 'x'): [{'FID-VGG': 79.0, 'intra-LPIPS': 0.43},
                          {'FID-VGG': 81.0, 'intra-LPIPS': 0.45}],
           ('rick', 'x'): [{'FID-VGG': 70.0, 'intra-LPIPS': 0.46}],
           ('tgan', 'y'): [{'FID-VGG': 60.0, 'intra-LPIPS': 0.40}]}
  lines = table.paper_agreement(cells, ['x', 'y'], 'FID-VGG')
  assert lines[-2] == ("- x: Kendall's tau -0.33 over 3 methods; the other way round "
                       '(ours: A < B): tgan < cdc, tgan < rick; intra-LPIPS CDC 0.440 vs '
                       'TGAN 0.400: agrees')
  assert lines[-1] == '- y: fewer than 2 of its methods measured (1)'
