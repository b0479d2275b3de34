"""Checkpoint variants and bad inputs for load_pretrained, each with a clear error."""
import subprocess
import sys

import numpy as np
import pytest

import fsig_jax
import torch_writer
from conftest import ROOT, shared_path
from fsig_jax.convert.torch_file import load_torch_file


@pytest.fixture(scope='module')
def ros():
  path = shared_path('conformance', 'rosinality_32px.pt')
  exp = dict(np.load(shared_path('conformance', 'rosinality_32px_expected.npz')))
  return load_torch_file(str(path)), exp


def nchw(x):
  return np.transpose(np.asarray(x), (0, 3, 1, 2))


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_convert_weight_output_without_d(ros, tmp_path, fmt):
  """convert_weight.py writes g_ema + latent_avg (and d only with --disc)."""
  ckpt, e = ros
  path = tmp_path / 'converted.pt'
  torch_writer.save({'g_ema': ckpt['g_ema'], 'latent_avg': e['mean_latent'][0]}, path, fmt)
  bundle = fsig_jax.load_pretrained(path)
  assert sorted(bundle.nets) == ['G_ema'] and not bundle.has_discriminator
  # latent_avg becomes w_avg, so default truncation reproduces the official output.
  got = nchw(bundle.generate(e['z'], truncation=0.7))
  assert np.abs(got - e['img_trunc']).max() < 1e-3
  with pytest.raises(fsig_jax.MissingNetworkError, match='no D network.*--disc'):
    bundle.discriminate(np.zeros((4, 32, 32, 3), np.float32))
  with pytest.raises(fsig_jax.MissingNetworkError, match=str(path)):
    fsig_jax.load_pretrained(path, require_discriminator=True)


def test_bare_generator_state_dict_and_computed_w_avg(ros, tmp_path):
  ckpt, e = ros
  path = tmp_path / 'g.pt'
  torch_writer.save(ckpt['g_ema'], path)
  bundle = fsig_jax.load_pretrained(path)
  np.testing.assert_allclose(nchw(bundle.generate(e['z'])), e['img'], atol=1e-3)
  # No latent_avg stored: w_avg is the mean of 10k mapped z, close to the official estimate.
  assert np.abs(np.asarray(bundle.w_avg) - e['mean_latent'][0]).max() < 0.1


def test_non_stylegan2_state_dict_is_named(ros, tmp_path):
  ckpt, _ = ros
  path = tmp_path / 'resnet.pt'
  torch_writer.save({'g_ema': {'conv1.weight': np.zeros((8, 3, 3, 3), np.float32)}}, path)
  with pytest.raises(fsig_jax.CheckpointError, match=r"resnet.pt.*'style.1.weight'.*not look like"):
    fsig_jax.load_pretrained(path)
  other = tmp_path / 'classifier.pt'
  torch_writer.save({'model': {'fc.weight': np.zeros((2, 2), np.float32)}, 'epoch': 3}, other)
  with pytest.raises(fsig_jax.CheckpointError, match=r"classifier.pt: not a StyleGAN2 checkpoint.*'model'"):
    fsig_jax.load_pretrained(other)


def test_inconsistent_shapes_are_named(ros, tmp_path):
  ckpt, _ = ros
  g = dict(ckpt['g_ema'])
  g['noises.noise_3'] = np.zeros((1, 1, 5, 5), np.float32)
  path = tmp_path / 'bad.pt'
  torch_writer.save({'g_ema': g}, path)
  with pytest.raises(fsig_jax.CheckpointError, match=r"noises.noise_3.*\(1, 1, 5, 5\).*expected"):
    fsig_jax.load_pretrained(path)


@pytest.mark.parametrize('name', ['rosinality_32px.pt', 'ada_32px.pkl'])
def test_truncated_file(tmp_path, name):
  data = shared_path('conformance', name).read_bytes()
  path = tmp_path / name
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(fsig_jax.CheckpointError, match=str(path)):
    fsig_jax.load_pretrained(path)


def test_unknown_missing_empty_and_directory(tmp_path):
  txt = tmp_path / 'notes.pt'
  txt.write_text('hello')
  with pytest.raises(fsig_jax.CheckpointError, match='unknown checkpoint format'):
    fsig_jax.load_pretrained(txt)
  with pytest.raises(fsig_jax.CheckpointError, match='no such file'):
    fsig_jax.load_pretrained(tmp_path / 'missing.pkl')
  empty = tmp_path / 'empty.pkl'
  empty.write_bytes(b'')
  with pytest.raises(fsig_jax.CheckpointError, match='empty'):
    fsig_jax.load_pretrained(empty)
  with pytest.raises(fsig_jax.CheckpointError, match='not an fsig-jax orbax checkpoint'):
    fsig_jax.load_pretrained(tmp_path)


def test_wrong_resolution_is_named():
  path = shared_path('conformance', 'ada_32px.pkl')
  with pytest.raises(fsig_jax.CheckpointError, match=r'32x32, but 256x256 was asked'):
    fsig_jax.load_pretrained(path, resolution=256)


def test_malicious_pickle_is_refused_via_load_pretrained(tmp_path):
  marker = tmp_path / 'pwned'
  payload = (b'\x80\x02cos\nsystem\nq\x00X' + len(f'touch {marker}').to_bytes(4, 'little')
             + f'touch {marker}'.encode() + b'\x85R.')
  path = tmp_path / 'evil.pkl'
  path.write_bytes(payload)
  with pytest.raises(fsig_jax.UnsafePickleError, match="os.system"):
    fsig_jax.load_pretrained(path)
  assert not marker.exists()


def test_conversion_never_imports_torch():
  pt = shared_path('conformance', 'rosinality_32px.pt')
  pkl = shared_path('conformance', 'ada_32px.pkl')
  code = f"""
import sys
sys.modules['torch'] = None  # any 'import torch' now raises ImportError
import numpy as np, fsig_jax
for p in [{str(pt)!r}, {str(pkl)!r}]:
  b = fsig_jax.load_pretrained(p)
  assert np.isfinite(np.asarray(b.generate(np.zeros((2, 64), np.float32)))).all()
assert sys.modules['torch'] is None
print('ok')
"""
  r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                     timeout=300)
  assert r.returncode == 0 and 'ok' in r.stdout, r.stderr[-2000:]
