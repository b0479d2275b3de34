"""Projection of images into W / W+ (fsig_jax/inversion/projector.py, launch/project.py),
against ada projector.py's formulas and by what it achieves on a tiny model."""
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import fsig_jax
from conftest import ROOT, one_line_error
from engine_utils import tiny_bundle
from fsig_jax.data.images import load_image_files
from fsig_jax.errors import DataError
from fsig_jax.inversion import projector
from fsig_jax.metrics import lpips


def run(script, *args):
  return subprocess.run([sys.executable, f'launch/{script}.py', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def bundle():
  return tiny_bundle(0)


@pytest.fixture(scope='module')
def saved(bundle, tmp_path_factory):
  return fsig_jax.save_bundle(bundle, str(tmp_path_factory.mktemp('proj') / 'tiny'))


def test_schedules_follow_ada():
  hp = projector.ProjectConfig(num_steps=40)
  sched = hp.schedule()
  for step in range(40):
    t = step / 40  # ada projector.py lines 81-86, in plain Python
    lr_ramp = min(1.0, (1.0 - t) / 0.25)
    lr_ramp = (0.5 - 0.5 * math.cos(lr_ramp * math.pi)) * min(1.0, t / 0.05)
    np.testing.assert_allclose(float(projector.learning_rate(sched, step)), 0.1 * lr_ramp,
                               atol=1e-7)
    sigma = 2.0 * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
    np.testing.assert_allclose(float(projector.w_noise_scale(sched, step, 2.0)), sigma,
                               rtol=1e-6, atol=1e-9)


def test_noise_regularization_and_normalization_match_ada_torch():
  torch = pytest.importorskip('torch')
  F = torch.nn.functional
  rng = np.random.default_rng(0)
  # Smooth some maps so the autocorrelations are far from zero.
  maps = {f'b{r}.conv0': np.cumsum(rng.normal(size=(r, r)), axis=1).astype(np.float32)
          for r in (4, 8, 16, 32)}
  reg = 0.0  # ada projector.py lines 105-113
  for v in maps.values():
    noise = torch.tensor(v)[None, None]
    while True:
      reg += (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
      reg += (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
      if noise.shape[2] <= 8:
        break
      noise = F.avg_pool2d(noise, kernel_size=2)
  got = projector.noise_regularization({k: jnp.asarray(v) for k, v in maps.items()})
  np.testing.assert_allclose(float(got), float(reg), rtol=1e-5)
  normed = projector.normalize_noise({k: jnp.asarray(v) for k, v in maps.items()})
  for k, v in maps.items():  # lines 126-129
    buf = torch.tensor(v)
    buf -= buf.mean()
    buf *= buf.square().mean().rsqrt()
    np.testing.assert_allclose(np.asarray(normed[k]), buf.numpy(), rtol=1e-5, atol=1e-6)


def test_w_stats_are_mean_and_std_of_mapped_z(bundle):
  key = jax.random.PRNGKey(3)
  w_avg, w_std = projector.w_stats(bundle, key, 300)
  z = jax.random.normal(key, (300, bundle.config.z_dim))
  w = np.asarray(bundle.map(z))[:, 0].astype(np.float64)
  np.testing.assert_allclose(np.asarray(w_avg), w.mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(float(w_std), np.sqrt(((w - w.mean(0)) ** 2).sum() / 300),
                             rtol=1e-4)


def test_lpips_input_sizes():
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 512, 512, 3))
  small = projector.lpips_input(x)  # ada: F.interpolate(mode='area') to 256
  np.testing.assert_allclose(np.asarray(small)[0, 3, 5],
                             np.asarray(x)[0, 6:8, 10:12].mean(axis=(0, 1)), rtol=1e-5)
  assert projector.lpips_input(x[:, :32, :32]).shape == (1, 32, 32, 3)
  up = projector.lpips_input(x[:, :8, :8])
  assert up.shape == (1, 16, 16, 3) and np.array_equal(up[0, 3, 5], x[0, 1, 2])


def test_projection_of_a_generated_image(bundle):
  """The image of a known w is found again: LPIPS falls well below its start."""
  w_true = bundle.map(bundle.seed_z([5]))
  target = np.asarray(bundle.synthesize(w_true))[0]
  hp = projector.ProjectConfig(num_steps=12, w_avg_samples=100)
  key = jax.random.PRNGKey(1)
  result = projector.project(bundle, target, key, hp, snapshot_steps=(6, 12), log_every=6)
  cfg = bundle.config
  w_avg, _ = projector.w_stats(bundle, jax.random.split(key, 3)[0], 100)
  start = bundle.synthesize(jnp.broadcast_to(w_avg, (1, cfg.num_ws, cfg.w_dim)))
  d0 = float(lpips.lpips_distance(start, target[None], 'vgg')[0])
  d1 = float(lpips.lpips_distance(result['image'], target[None], 'vgg')[0])
  assert d1 < 0.5 * d0, (d0, d1)
  w = result['w']
  assert w.shape == (cfg.num_ws, cfg.w_dim) and np.all(w == w[0])  # one w, broadcast
  assert np.abs(w[0] - np.asarray(w_true)[0, 0]).mean() < np.abs(
      np.asarray(w_avg) - np.asarray(w_true)[0, 0]).mean()  # moved towards the true w
  assert sorted(result['noise']) == sorted(bundle.noise_shapes())
  for k, n in result['noise'].items():
    assert n.shape == bundle.noise_shapes()[k]
    assert abs(n.mean()) < 1e-4 and abs((n ** 2).mean() - 1) < 1e-3  # normalised
  again = bundle.synthesize(w[None], noise=result['noise'])
  np.testing.assert_array_equal(np.asarray(result['image']), np.asarray(again))
  assert [s for s, _ in result['snapshots']] == [6, 12]
  np.testing.assert_array_equal(result['snapshots'][-1][1], np.asarray(result['image']))


def test_project_cli_round_trip_through_generate(bundle, saved, tmp_path):
  """project.py (W+, a non-square target) writes a latent that generate.py --projected
  renders to exactly project.py's proj.png."""
  rng = np.random.default_rng(0)
  src = tmp_path / 'target.png'
  Image.fromarray(rng.integers(0, 255, (20, 24, 3), np.uint8)).save(src)  # 24 wide, 20 high
  out = tmp_path / 'proj'
  r = run('project', f'--checkpoint={saved}', f'--target={src}', f'--outdir={out}',
          '--num_steps=3', '--w_avg_samples=20', '--snapshots=3', '--w_plus')
  assert r.returncode == 0, r.stderr
  assert 'note: the 24x20 target is center-cropped and resized to 16x16' in r.stdout
  assert 'ETA' in r.stderr  # progress lines in the log
  cfg = bundle.config
  with np.load(out / 'projected_w.npz') as f:
    w = f['w']
    noise = {k: f[k] for k in f.files if k != 'w'}
  assert w.shape == (cfg.num_ws, cfg.w_dim) and not np.all(w == w[0])  # W+: rows differ
  assert sorted(noise) == sorted('noise.' + k for k in bundle.noise_shapes())
  want_target = np.rint((load_image_files([src], 16)[0] + 1) * 127.5)
  np.testing.assert_array_equal(np.asarray(Image.open(out / 'target.png')), want_target)
  assert np.asarray(Image.open(out / 'progress.png')).shape == (20, 2 + 4 * 18, 3)
  proj = np.asarray(Image.open(out / 'proj.png'))
  mine = bundle.synthesize(w[None], noise={k[6:]: v for k, v in noise.items()})
  np.testing.assert_array_equal(proj, np.clip(np.rint((np.asarray(mine)[0] + 1) * 127.5), 0, 255))
  r = run('generate', f'--checkpoint={saved}', f'--projected={out / "projected_w.npz"}',
          f'--outdir={tmp_path / "render"}')
  assert r.returncode == 0, r.stderr
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'render' / 'proj00.png')), proj)


def test_bad_inputs_give_one_line(saved, tmp_path):
  out = f'--outdir={tmp_path / "o"}'
  one_line_error(run('project', f'--checkpoint={saved}', f'--target={tmp_path / "no.png"}', out),
                 'no.png', 'does not exist')
  bad = tmp_path / 'bad.png'
  bad.write_bytes(b'not an image')
  one_line_error(run('project', f'--checkpoint={saved}', f'--target={bad}', out),
                 'bad.png', 'not an image')
  latent = tmp_path / 'wrong.npz'
  np.savez(latent, w=np.zeros((3, 7), np.float32))
  one_line_error(run('generate', f'--checkpoint={saved}', f'--projected={latent}'),
                 'wrong.npz', '(3, 7)', '(6, 32)')


def test_load_latent_accepts_ada_layout_and_checks_noise(bundle, tmp_path):
  cfg = bundle.config
  w = np.random.default_rng(0).normal(size=(1, cfg.num_ws, cfg.w_dim)).astype(np.float32)
  np.savez(tmp_path / 'ada.npz', w=w)  # ada projector.py line 205: w (1, num_ws, w_dim)
  ws, noise = projector.load_latent(str(tmp_path / 'ada.npz'), bundle)
  assert noise is None and np.array_equal(ws, w)
  projector.save_latent(str(tmp_path / 'bad.npz'), w[0], {'b8.conv0': np.zeros((4, 4))})
  with pytest.raises(DataError, match='noise maps do not fit'):
    projector.load_latent(str(tmp_path / 'bad.npz'), bundle)


def test_progan_is_refused_clearly():
  from fsig_jax.models.bundle import ModelBundle  # pylint: disable=g-import-not-at-top
  from fsig_jax.models.progan import ProGANConfig  # pylint: disable=g-import-not-at-top
  progan = ModelBundle(config=ProGANConfig(16, (32, 32, 16), z_dim=32), nets={})
  with pytest.raises(ValueError, match='ProGAN has no per-layer styles.*projection'):
    projector.project(progan, np.zeros((16, 16, 3)), jax.random.PRNGKey(0))
