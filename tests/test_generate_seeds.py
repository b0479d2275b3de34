"""launch/generate.py's stylegan2-ada-pytorch modes (issue 20): --seeds with --outdir,
the style-mixing figure, and one-line refusals of bad flags."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fsig_jax
from conftest import ROOT, one_line_error
from engine_utils import tiny_bundle
from fsig_jax.errors import ConfigError
from fsig_jax.utils.cli import parse_seeds

PAD = 2  # fsig_jax.utils.images.make_grid's padding


def run(*args):
  return subprocess.run([sys.executable, 'launch/generate.py', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def ada_uint8(x):
  """ada generate.py line 117: (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)."""
  return np.floor(np.clip(np.asarray(x, np.float64) * 127.5 + 128, 0, 255)).astype(np.uint8)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  bundle = tiny_bundle(0)
  path = fsig_jax.save_bundle(bundle, str(tmp_path_factory.mktemp('gen') / 'tiny'))
  return bundle, path


def test_parse_seeds():
  assert parse_seeds('0-3') == [0, 1, 2, 3]
  assert parse_seeds('85,100') == [85, 100]
  assert parse_seeds('0,5,10-12') == [0, 5, 10, 11, 12]
  assert parse_seeds('7') == [7]
  for bad in ('3-1', 'a', '-1', '', '1,,2', '1-2-3', str(2 ** 32)):
    with pytest.raises(ConfigError, match='--rows'):
      parse_seeds(bad, '--rows')


def test_seed_z_is_numpy_randomstate(model):
  bundle, _ = model
  seeds = [0, 7, 123456, 2 ** 32 - 1]
  z = bundle.seed_z(seeds)
  assert z.shape == (4, bundle.config.z_dim) and z.dtype == np.float32
  for row, s in zip(z, seeds):
    want = np.random.RandomState(s).randn(1, bundle.config.z_dim)[0]
    np.testing.assert_array_equal(row, want.astype(np.float32))


def test_seeds_outdir_writes_each_seeds_image(model, tmp_path):
  bundle, path = model
  out = tmp_path / 'out'
  r = run(f'--checkpoint={path}', '--seeds=0,3-4', f'--outdir={out}', '--truncation=0.7')
  assert r.returncode == 0, r.stderr
  assert sorted(p.name for p in out.iterdir()) == ['seed0000.png', 'seed0003.png',
                                                   'seed0004.png']
  for s in (0, 3, 4):
    z = np.random.RandomState(s).randn(1, bundle.config.z_dim).astype(np.float32)
    want = np.asarray(bundle.generate(z, truncation=0.7, noise_mode='const'))[0]
    got = np.asarray(Image.open(out / f'seed{s:04d}.png'))
    assert got.shape == (16, 16, 3)
    # ada's uint8 conversion floors x*127.5+128; ours rounds (x+1)*127.5: the same
    # up to float round-off at exact half-way values.
    assert np.abs(got.astype(int) - ada_uint8(want)).max() <= 1
    assert np.mean(got != ada_uint8(want)) < 0.01, s
  a, b = (np.asarray(Image.open(out / f'seed{s:04d}.png')) for s in (3, 4))
  assert np.abs(a.astype(int) - b).mean() > 1  # different seeds, different images


def test_grid_mode_kept_and_bad_flags_refused(model, tmp_path):
  _, path = model
  png = tmp_path / 'grid.png'
  r = run(f'--checkpoint={path}', f'--out={png}', '--num=3', '--batch=2')
  assert r.returncode == 0, r.stderr
  assert np.asarray(Image.open(png)).shape == (PAD + 2 * 18, PAD + 2 * 18, 3)
  one_line_error(run(f'--checkpoint={path}', '--num=0'), '--num', 'positive')
  one_line_error(run(f'--checkpoint={path}', '--seeds=1', '--rows=2', '--cols=3'),
                 '--seeds', '--rows/--cols')


def test_style_mixing_figure(model, tmp_path):
  """Cells equal the generator's own two-latent mixing (styles [0, 2) from the first)."""
  bundle, path = model
  png = tmp_path / 'mix.png'
  rows, cols = [1, 2], [3, 4, 5]
  r = run(f'--checkpoint={path}', '--rows=1,2', '--cols=3-5', '--styles=0-1',
          '--truncation=0.8', f'--out={png}')
  assert r.returncode == 0, r.stderr
  grid = np.asarray(Image.open(png)).astype(int)
  assert grid.shape == (PAD + 3 * 18, PAD + 4 * 18, 3)
  cell = lambda i, j: grid[PAD + 18 * i:PAD + 18 * i + 16, PAD + 18 * j:PAD + 18 * j + 16]  # noqa: E731

  def img(z, z2=None):
    x = bundle.generate(z, z2, inject_index=2, truncation=0.8)
    return np.clip(np.rint((np.asarray(x)[0] + 1) * 127.5), 0, 255)

  z = {s: np.random.RandomState(s).randn(1, bundle.config.z_dim).astype(np.float32)
       for s in rows + cols}
  assert np.all(cell(0, 0) == 255)  # blank corner
  for j, c in enumerate(cols, 1):
    assert np.abs(cell(0, j) - img(z[c])).max() <= 1
  for i, rs in enumerate(rows, 1):
    assert np.abs(cell(i, 0) - img(z[rs])).max() <= 1
    for j, c in enumerate(cols, 1):
      assert np.abs(cell(i, j) - img(z[c], z[rs])).max() <= 1, (rs, c)
  one_line_error(run(f'--checkpoint={path}', '--rows=1', '--cols=2', '--styles=0-9'),
                 '--styles=0-9', '0-5')
