"""Export to rosinality/stylegan2-pytorch's .pt: the reverse of convert/rosinality.py.

The reference for names, order, shapes and buffer values is a file written by
rosinality's own code: ../shared/conformance/rosinality_32px.pt (torch.save of
its Generator/Discriminator state dicts). Its model.py does not import as is
(`op/` JIT-compiles CUDA extensions at import): with a checkout in
$FSIG_ROSINALITY, one test stubs them as benchmarks/compare_torch.py does and
runs the exported file through its Generator and Discriminator.
"""
import dataclasses
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

import fsig_jax
from conftest import ROOT, shared_path
from engine_utils import TINY, leaves_with_paths
from fsig_jax.convert import rosinality, torch_writer
from fsig_jax.convert.torch_file import load_torch_file
from fsig_jax.models.bundle import ModelBundle, init_bundle
from fsig_jax.models.progan import ProGANConfig


def random_bundle(cfg=TINY, scale=1.0):
  """A bundle whose G, G_ema, D, noise and w_avg are all different N(0, scale^2) arrays
  (shapes from init_bundle traced abstractly: nothing is compiled)."""
  shapes = jax.eval_shape(lambda: init_bundle(cfg, jax.random.PRNGKey(0)).nets)
  rng = np.random.default_rng(1)
  nets = jax.tree.map(lambda x: (scale * rng.standard_normal(x.shape)).astype(np.float32), shapes)
  return ModelBundle(config=cfg, nets=nets, source='test')


def test_matches_rosinality_state_dicts_written_by_its_code(tmp_path):
  path = shared_path('conformance', 'rosinality_32px.pt')
  original = load_torch_file(path)
  ckpt = rosinality.export_checkpoint(fsig_jax.load_pretrained(path))
  for net in ('g_ema', 'g', 'd'):
    want, got = original[net], ckpt[net]
    assert list(got) == list(want), net  # same names in state_dict() order
    for name, value in want.items():  # weights, noise buffers and blur kernels
      assert got[name].dtype == np.float32 and got[name].shape == value.shape, (net, name)
      np.testing.assert_array_equal(got[name], value, err_msg=f'{net}.{name}')


def test_export_then_load_is_bit_exact(tmp_path):
  bundle = random_bundle()
  path = torch_writer.save(rosinality.export_checkpoint(bundle), tmp_path / 'model.pt')
  back = fsig_jax.load_pretrained(path)
  assert back.config == dataclasses.replace(bundle.config, mapping_hidden=TINY.w_dim)
  want, got = leaves_with_paths(bundle.nets), leaves_with_paths(back.nets)
  assert set(got) == set(want)
  # rosinality keeps one latent_avg (G_ema's w_avg); G reads it back too.
  g_w_avg = "['G']['buffers']['w_avg']"
  want[g_w_avg] = want["['G_ema']['buffers']['w_avg']"]
  for name in want:
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  # Storages start on 64-byte boundaries, as torch.save writes them.
  with zipfile.ZipFile(path) as zf:
    for info in zf.infolist():
      if '/data/' in info.filename:
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        assert start % 64 == 0, info.filename


def test_torch_loads_it_with_weights_only(tmp_path):
  torch = pytest.importorskip('torch')
  bundle = random_bundle()
  ckpt = rosinality.export_checkpoint(bundle, nets=('G_ema', 'D'))
  path = torch_writer.save(ckpt, tmp_path / 'model.pt')
  for mmap in (False, True):
    loaded = torch.load(path, weights_only=True, mmap=mmap)
    assert list(loaded) == ['g_ema', 'latent_avg', 'd']
    np.testing.assert_array_equal(loaded['latent_avg'].numpy(),
                                  bundle.nets['G_ema']['buffers']['w_avg'])
    for net in ('g_ema', 'd'):
      assert list(loaded[net]) == list(ckpt[net])
      for name, value in ckpt[net].items():
        t = loaded[net][name]
        assert t.dtype == torch.float32 and tuple(t.shape) == value.shape, name
        np.testing.assert_array_equal(t.numpy(), value, err_msg=name)


def test_export_refuses_what_rosinality_cannot_build():
  clamped = dataclasses.replace(TINY, g_conv_clamp=256.0)
  with pytest.raises(fsig_jax.CheckpointError, match=r'g_conv_clamp is 256\.0'):
    rosinality.export_checkpoint(random_bundle(clamped))
  wide = dataclasses.replace(TINY, z_dim=16)
  with pytest.raises(fsig_jax.CheckpointError, match='one style_dim'):
    rosinality.export_checkpoint(random_bundle(wide))
  progan = ModelBundle(config=ProGANConfig(16, (32, 32, 16), z_dim=32, d_hidden=32), nets={})
  with pytest.raises(fsig_jax.CheckpointError, match='not a StyleGAN2'):
    rosinality.export_checkpoint(progan)


def _run(*args):
  return subprocess.run([sys.executable, 'launch/export.py', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300, check=False)


def test_export_cli(tmp_path):
  bundle = random_bundle()
  model = fsig_jax.save_bundle(bundle, str(tmp_path / 'model'))
  out = tmp_path / 'out.pt'
  r = _run(f'--checkpoint={model}', f'--out={out}', '--nets=g_ema,d')
  assert r.returncode == 0, r.stderr
  assert 'g_ema, d' in r.stdout and 'load_state_dict' in r.stdout
  assert list(load_torch_file(out)) == ['g_ema', 'latent_avg', 'd']
  again = _run(f'--checkpoint={model}', f'--out={out}')
  assert again.returncode == 2 and 'pass --overwrite' in again.stderr
  missing = _run(f'--checkpoint={tmp_path / "nope"}', f'--out={tmp_path / "x.pt"}')
  assert missing.returncode == 2 and 'does not exist' in missing.stderr
  assert 'Traceback' not in missing.stderr + again.stderr


_ROSINALITY_CHECK = '''
import importlib.util, sys
import jax, numpy as np, torch
sys.path[:0] = [ROOT, ROOT + "/tests"]
spec = importlib.util.spec_from_file_location("compare_torch", ROOT + "/benchmarks/compare_torch.py")
ct = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ct)
model = ct._import_rosinality(CHECKOUT, "native", "cpu")  # CUDA ops stubbed, nothing compiled
from fsig_jax.convert import rosinality, torch_writer
from fsig_jax.models.config import StyleGAN2Config, rosinality_channels
from test_export_rosinality import random_bundle
ch = rosinality_channels(8, 2)
bundle = random_bundle(StyleGAN2Config(8, ch, ch, z_dim=32, w_dim=32, n_mlp=2), scale=0.3)
path = torch_writer.save(rosinality.export_checkpoint(bundle), OUT)
ckpt = torch.load(path)  # as generate.py (weights_only by default)
g = model.Generator(8, 32, 2, channel_multiplier=2).eval()
g.load_state_dict(ckpt["g_ema"])  # strict, as generate.py
d = model.Discriminator(8, channel_multiplier=2).eval()
d.load_state_dict(ckpt["d"])
z = np.random.default_rng(0).standard_normal((4, 32)).astype(np.float32)
with torch.no_grad():
  img, _ = g([torch.from_numpy(z)], randomize_noise=False)
  logits = d(img).numpy()
ours = np.transpose(np.asarray(bundle.generate(z, noise_mode="const")), (0, 3, 1, 2))
ours_d = np.asarray(bundle.discriminate(np.transpose(img.numpy(), (0, 2, 3, 1))))
assert np.abs(img.numpy()).max() > 0.05 and np.abs(logits).max() > 0.05
print("max diff", np.abs(ours - img.numpy()).max(), np.abs(ours_d - logits).max())
assert np.abs(ours - img.numpy()).max() < 1e-4 and np.abs(ours_d - logits).max() < 1e-4
'''


def test_rosinality_code_loads_and_runs_the_export(tmp_path):
  """With a rosinality/stylegan2-pytorch checkout in $FSIG_ROSINALITY (never vendored):
  its Generator / Discriminator load the exported state dicts strictly, as generate.py
  does, and give our images and logits (its CUDA ops stubbed as in
  benchmarks/compare_torch.py; in a subprocess, which keeps its absl flags apart)."""
  import os  # pylint: disable=g-import-not-at-top
  checkout = os.environ.get('FSIG_ROSINALITY')
  if not checkout:
    pytest.skip('set FSIG_ROSINALITY to a rosinality/stylegan2-pytorch checkout')
  pytest.importorskip('torch')
  code = (f'ROOT, CHECKOUT, OUT = {str(ROOT)!r}, {checkout!r}, {str(tmp_path / "m.pt")!r}\n'
          + _ROSINALITY_CHECK)
  r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                     timeout=600, check=False)
  assert r.returncode == 0, r.stderr[-3000:]
