"""Reading official PyTorch checkpoints safely, without torch."""
import argparse
import collections
import io
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import ml_dtypes
import numpy as np
import pytest

import torch_writer
from conftest import ROOT, shared_path
from fsig_jax.convert.errors import CheckpointError, UnsafePickleError
from fsig_jax.convert.safe_unpickle import PersistentObject, SafeUnpickler, allowed_globals
from fsig_jax.convert.torch_file import (load_network_pickle, load_torch_file,
                                         module_attributes, module_state_dict)


def _rosinality():
  return shared_path('conformance', 'rosinality_32px.pt')


def _ada():
  return shared_path('conformance', 'ada_32px.pkl')


# --- the real conformance files ------------------------------------------------------

def test_rosinality_checkpoint_loads():
  ckpt = load_torch_file(_rosinality())
  assert set(ckpt) == {'g', 'g_ema', 'd', 'args'}
  assert ckpt['args'] == {'size': 32, 'channel_multiplier': 1, 'n_mlp': 2, 'latent': 64}
  g_ema = ckpt['g_ema']
  assert isinstance(g_ema, collections.OrderedDict)
  assert g_ema['style.1.weight'].shape == (64, 64)
  assert g_ema['input.input'].shape == (1, 64, 4, 4)
  assert g_ema['noises.noise_6'].shape == (1, 1, 32, 32)
  assert g_ema['convs.4.conv.weight'].shape == (1, 32, 48, 3, 3)  # 48 ch at 16 px -> 32 at 32 px
  for net in ('g', 'g_ema', 'd'):
    for key, value in ckpt[net].items():
      assert value.dtype == np.float32 and np.isfinite(value).all(), (net, key)
  assert np.abs(g_ema['style.1.weight']).max() > 0
  assert np.abs(g_ema['input.input']).max() > 0


def test_ada_network_pickle_loads():
  pkl = load_network_pickle(_ada())
  assert set(pkl) == {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
  assert pkl['augment_pipe'] is None and pkl['training_set_kwargs'] is None
  g = pkl['G_ema']
  assert isinstance(g, PersistentObject) and g.class_name == 'Generator'
  sd = module_state_dict(g)
  expected = np.load(shared_path('conformance', 'ada_32px_expected.npz'))
  assert sd['mapping.w_avg'].shape == (64,)
  np.testing.assert_array_equal(sd['mapping.w_avg'], expected['w_avg'])
  assert sd['synthesis.b4.conv1.noise_const'].shape == (4, 4)
  assert sd['synthesis.b4.conv1.noise_strength'].shape == ()
  assert sd['synthesis.b4.const'].shape == (64, 4, 4)
  assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in sd.values())


def test_ada_module_attributes():
  pkl = load_network_pickle(_ada())
  g, d = module_attributes(pkl['G_ema']), module_attributes(pkl['D'])
  assert g['img_resolution'] == 32 and g['z_dim'] == 64 and g['w_dim'] == 64
  assert g['mapping.w_avg_beta'] == 0.995 and g['mapping.fc0.bias_gain'] == 0.01
  assert g['synthesis.b4.conv1.conv_clamp'] is None
  assert g['synthesis.b32.architecture'] == 'skip'
  assert d['b4.mbstd.group_size'] == 4 and d['b32.architecture'] == 'resnet'
  assert all(not part.startswith('_') for key in g for part in key.split('.'))
  assert not any(key.endswith('training') for key in g)
  assert pkl['D'].init_kwargs['epilogue_kwargs'] == {'mbstd_group_size': 4}
  assert module_state_dict(pkl['D'])['b4.conv.weight'].shape == (64, 65, 3, 3)


def test_loading_never_imports_torch():
  pt, pkl = _rosinality(), _ada()
  code = textwrap.dedent(f"""
      import sys

      class Blocker:
        def find_spec(self, name, path=None, target=None):
          if name.split('.')[0] in ('torch', 'torch_utils', 'dnnlib'):
            raise ImportError('blocked ' + name)

      sys.meta_path.insert(0, Blocker())
      sys.modules['torch'] = None
      from fsig_jax.convert.torch_file import (load_network_pickle, load_torch_file,
                                               module_state_dict)
      ckpt = load_torch_file({os.fspath(pt)!r})
      assert ckpt['g_ema']['style.1.weight'].shape == (64, 64)
      sd = module_state_dict(load_network_pickle({os.fspath(pkl)!r})['G_ema'])
      assert sd['mapping.w_avg'].shape == (64,)
      assert sys.modules['torch'] is None
      assert not any(m.split('.')[0] in ('torch_utils', 'dnnlib') for m in sys.modules)
      print('no torch needed')
      """)
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  assert 'no torch needed' in result.stdout


# --- round trips through tests/torch_writer.py ----------------------------------------

def _fixture():
  """A checkpoint-like tree with views, offsets, 0-d tensors and several dtypes."""
  shared = torch_writer.Storage(np.arange(24, dtype=np.float32))
  state = collections.OrderedDict(
      weight=np.arange(6, dtype=np.float32).reshape(2, 3),
      transposed=torch_writer.Tensor(shared, 0, (4, 6), (1, 4)),  # arange(24).view(6, 4).t()
      window=torch_writer.Tensor(shared, 5, (2, 3), (3, 1)),  # a view with a storage offset
      scalar=np.array(2.5, np.float32),
      half=np.array([1.5, -2.25, 65504], np.float16),
      long=np.array([[-(2**40)], [7]], np.int64),
      mask=np.array([True, False, True]),
      bf16=np.array([1.0, -3.5, 2.0**-10], ml_dtypes.bfloat16),
      empty=np.zeros((0, 3), np.float32),
  )
  args = argparse.Namespace(size=32, name='ffhq')
  return {'state': state, 'args': args,
          'meta': {'list': [1, 2.5, 'x', None], 'pair': (1, (2, 3)), 'raw': b'\x00\xff'}}


def _check_fixture(ckpt):
  state, base = ckpt['state'], np.arange(24, dtype=np.float32)
  assert isinstance(state, collections.OrderedDict) and list(state) == list(_fixture()['state'])
  expected = {
      'weight': np.arange(6, dtype=np.float32).reshape(2, 3),
      'transposed': base.reshape(6, 4).T, 'window': base[5:11].reshape(2, 3),
      'scalar': np.array(2.5, np.float32), 'half': np.array([1.5, -2.25, 65504], np.float16),
      'long': np.array([[-(2**40)], [7]], np.int64), 'mask': np.array([True, False, True]),
      'bf16': np.array([1.0, -3.5, 2.0**-10], np.float32), 'empty': np.zeros((0, 3), np.float32)}
  for key, want in expected.items():
    got = state[key]
    assert got.dtype == want.dtype and got.shape == want.shape, key
    assert got.flags.c_contiguous and got.flags.writeable, key
    np.testing.assert_array_equal(got, want, err_msg=key)
  assert ckpt['args'].size == 32 and ckpt['args'].name == 'ffhq'
  assert ckpt['meta'] == {'list': [1, 2.5, 'x', None], 'pair': (1, (2, 3)), 'raw': b'\x00\xff'}


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_torch_save_round_trip(tmp_path, fmt):
  path = tmp_path / f'ckpt_{fmt}.pt'
  torch_writer.save(_fixture(), path, fmt)
  _check_fixture(load_torch_file(path))


def test_legacy_storage_views(tmp_path):
  root = torch_writer.Storage(np.arange(10, dtype=np.float32))
  view = torch_writer.StorageView(root, 4, 6)
  path = tmp_path / 'views.pt'
  torch_writer.save({'v': torch_writer.Tensor(view, 1, (2, 2), (2, 1))}, path, 'legacy')
  np.testing.assert_array_equal(load_torch_file(path)['v'], [[5, 6], [7, 8]])


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_rebuild_tensor_v3_with_dtype_global(tmp_path, fmt):
  values = np.array([1, 300, 65535], np.uint16)
  raw = torch_writer.Storage(values.view(np.uint8), type_name='UntypedStorage')
  tensor = torch_writer.Reduced((torch_writer.Global('torch._utils', '_rebuild_tensor_v3'), (
      raw, 0, (3,), (1,), False, collections.OrderedDict(),
      torch_writer.Global('torch', 'uint16'))))
  path = tmp_path / 'v3.pt'
  torch_writer.save({'u16': tensor}, path, fmt)
  got = load_torch_file(path)['u16']
  assert got.dtype == np.uint16
  np.testing.assert_array_equal(got, values)


def test_big_endian_zip(tmp_path):
  values = np.array([[1.5, -2.0], [3.25, 1e-3]], np.float32)
  good = torch_writer.torch_save_bytes({'w': values})
  path = tmp_path / 'big.pt'
  with zipfile.ZipFile(path, 'w') as out, zipfile.ZipFile(io.BytesIO(good)) as zf:
    for name in zf.namelist():
      data = zf.read(name)
      if name.endswith('byteorder'):
        data = b'big'
      elif '/data/' in name:
        data = np.frombuffer(data, '<f4').astype('>f4').tobytes()
      out.writestr(name, data)
  got = load_torch_file(path)['w']
  assert got.dtype == np.float32 and got.dtype.isnative
  np.testing.assert_array_equal(got, values)


def _module(class_name, params=None, buffers=None, modules=None, **attrs):
  state = {'training': False, '_parameters': params or {}, '_buffers': buffers or {},
           '_non_persistent_buffers_set': set(), '_modules': modules or {},
           '_forward_hooks': collections.OrderedDict(), **attrs}
  return torch_writer.Module(class_name, state)


@pytest.mark.parametrize('nested', ['legacy', 'zip'])
def test_network_pickle_round_trip(tmp_path, nested):
  w = np.arange(12, dtype=np.float32).reshape(3, 4)
  fc = _module('FullyConnectedLayer',
               params={'weight': torch_writer.Tensor.of(w, parameter=True), 'bias': None},
               activation='lrelu', weight_gain=np.float64(0.125))
  mapping = _module('MappingNetwork', buffers={'w_avg': np.ones(4, np.float32),
                                               'scratch': np.zeros(2, np.float32)},
                    modules={'fc0': fc}, w_avg_beta=0.995,
                    _non_persistent_buffers_set={'scratch'})
  flipped = torch_writer.Tensor(torch_writer.Storage(w), 1, (4, 2), (1, 4))
  g = _module('Generator', buffers={'flipped': flipped}, modules={'mapping': mapping},
              img_resolution=32, block_resolutions=[4, 8], _init_kwargs={'z_dim': 4})
  path = tmp_path / 'net.pkl'
  torch_writer.save_network_pickle({'G_ema': g, 'augment_pipe': None}, path, nested)

  g = load_network_pickle(path)['G_ema']
  sd = module_state_dict(g)
  assert list(sd) == ['flipped', 'mapping.w_avg', 'mapping.fc0.weight']
  np.testing.assert_array_equal(sd['mapping.fc0.weight'], w)
  np.testing.assert_array_equal(sd['flipped'], w.reshape(-1)[1:9].reshape(2, 4).T)
  assert module_attributes(g) == {
      'img_resolution': 32, 'block_resolutions': [4, 8], 'mapping.w_avg_beta': 0.995,
      'mapping.fc0.activation': 'lrelu', 'mapping.fc0.weight_gain': 0.125}
  assert g.init_kwargs == {'z_dim': 4} and g.module_name is None


# --- refusing code --------------------------------------------------------------------

def _reduce_pickle(module, name, arg):
  """Protocol 2: GLOBAL module name, (arg,), REDUCE - the classic exploit shape."""
  return (b'\x80\x02c' + f'{module}\n{name}\n'.encode() + pickle.dumps(arg, 2)[2:-1]
          + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


def _exploits(marker):
  return [
      ('os', 'system', f'touch {marker}'),
      ('builtins', 'eval', f'open({os.fspath(marker)!r}, "w").write("pwned")'),
      ('__builtin__', 'eval', f'open({os.fspath(marker)!r}, "w").write("pwned")'),
      ('subprocess', 'Popen', ['touch', os.fspath(marker)]),
  ]


@pytest.mark.parametrize('index', range(4))
def test_malicious_network_pickle_is_refused_without_running(tmp_path, index):
  marker = tmp_path / 'pwned'
  module, name, arg = _exploits(marker)[index]
  path = tmp_path / 'evil.pkl'
  path.write_bytes(_reduce_pickle(module, name, arg))
  with pytest.raises(UnsafePickleError) as err:
    load_network_pickle(path)
  shown = 'builtins' if module == '__builtin__' else module
  assert f"'{shown}.{name}'" in str(err.value) and str(path) in str(err.value)
  assert 'never executes code' in str(err.value)
  assert not marker.exists()


def test_stack_global_exploit_is_refused(tmp_path):
  marker = tmp_path / 'pwned'

  class Evil:
    def __reduce__(self):
      return (os.system, (f'touch {marker}',))

  path = tmp_path / 'evil4.pkl'
  path.write_bytes(pickle.dumps({'G_ema': Evil()}, protocol=4))
  with pytest.raises(UnsafePickleError, match=r"'(posix|nt)\.system'"):
    load_network_pickle(path)
  assert not marker.exists()


def test_malicious_torch_zip_and_nested_storage_are_refused(tmp_path):
  marker = tmp_path / 'pwned'
  evil = _reduce_pickle('os', 'system', f'touch {marker}')
  zipped = tmp_path / 'evil.pt'
  with zipfile.ZipFile(zipped, 'w') as zf:
    zf.writestr('archive/data.pkl', evil)
  with pytest.raises(UnsafePickleError, match='os.system'):
    load_torch_file(zipped)
  legacy = tmp_path / 'evil_legacy.pt'
  legacy.write_bytes(torch_writer.legacy_stream(evil))
  with pytest.raises(UnsafePickleError, match='os.system'):
    load_torch_file(legacy)
  nested = torch_writer.Reduced((torch_writer.Global('torch.storage', '_load_from_bytes'),
                                 (torch_writer.legacy_stream(evil),)))
  pkl = tmp_path / 'evil_nested.pkl'
  torch_writer.save_network_pickle({'G_ema': nested}, pkl)
  with pytest.raises(UnsafePickleError, match='os.system'):
    load_network_pickle(pkl)
  assert not marker.exists()


@pytest.mark.parametrize('qualified', ['torch.nn.modules.conv.Conv2d', 'torch.load',
                                       'torch_utils.persistence.persistent_class',
                                       'numpy.load', 'builtins.getattr', 'copyreg._reconstructor'])
def test_other_globals_are_refused(qualified):
  module, name = qualified.rsplit('.', 1)
  with pytest.raises(UnsafePickleError, match=qualified.replace('.', r'\.')):
    SafeUnpickler(io.BytesIO(), 'test.pkl').find_class(module, name)


def test_allow_list_resolves_and_holds_no_code_runners():
  allowed = allowed_globals()
  unpickler = SafeUnpickler(io.BytesIO(), 'test.pkl')
  for qualified in allowed:
    module, name = qualified.rsplit('.', 1)
    assert unpickler.find_class(module, name) is not None
  assert 'collections.OrderedDict' in allowed and 'torch.FloatStorage' in allowed
  assert not any(q.startswith(('os.', 'posix.', 'subprocess.', 'sys.', 'importlib.'))
                 for q in allowed)
  assert not {'builtins.eval', 'builtins.exec', 'builtins.getattr', 'builtins.__import__',
              'builtins.open'} & set(allowed)


def test_out_of_bounds_views_are_refused(tmp_path):
  storage = torch_writer.Storage(np.zeros(4, np.float32))
  path = tmp_path / 'oob.pt'
  torch_writer.save({'w': torch_writer.Tensor(storage, 2, (3,), (1,))}, path)
  with pytest.raises(CheckpointError, match='past the end'):
    load_torch_file(path)


# --- clear errors for broken files -------------------------------------------------------

@pytest.mark.parametrize('which', ['pt', 'pkl'])
def test_truncated_real_files(tmp_path, which):
  source = _rosinality() if which == 'pt' else _ada()
  data = source.read_bytes()
  path = tmp_path / f'half.{which}'
  path.write_bytes(data[:len(data) // 2])
  load = load_torch_file if which == 'pt' else load_network_pickle
  with pytest.raises(CheckpointError, match='truncated or corrupt') as err:
    load(path)
  assert str(path) in str(err.value) and 're-download' in str(err.value)


def test_truncated_legacy_storage_data(tmp_path):
  data = torch_writer.torch_save_bytes({'w': np.ones(100, np.float32)}, 'legacy')
  path = tmp_path / 'cut.pt'
  path.write_bytes(data[:-10])
  with pytest.raises(CheckpointError, match='truncated or corrupt'):
    load_torch_file(path)


def test_zip_with_missing_storage(tmp_path):
  path = tmp_path / 'nostorage.pt'
  good = torch_writer.torch_save_bytes({'w': np.ones(3, np.float32)})
  with zipfile.ZipFile(path, 'w') as out, zipfile.ZipFile(io.BytesIO(good)) as zf:
    for name in zf.namelist():
      if '/data/' not in name:
        out.writestr(name, zf.read(name))
  with pytest.raises(CheckpointError, match='data/0 is missing'):
    load_torch_file(path)


@pytest.mark.parametrize('content, match', [
    (b'\x89PNG\r\n\x1a\n' + bytes(64), 'PNG image'),
    (b'<!DOCTYPE html><html>quota exceeded</html>', 'HTML'),
    (b'just some text, not a checkpoint', 'not a PyTorch checkpoint'),
])
def test_not_a_checkpoint(tmp_path, content, match):
  path = tmp_path / 'thing.pt'
  path.write_bytes(content)
  for load in (load_torch_file, load_network_pickle):
    with pytest.raises(CheckpointError, match=match) as err:
      load(path)
    assert str(path) in str(err.value) and 'rosinality .pt' in str(err.value)


def test_zip_without_data_pkl(tmp_path):
  path = tmp_path / 'other.zip'
  with zipfile.ZipFile(path, 'w') as zf:
    zf.writestr('readme.txt', 'hello')
  with pytest.raises(CheckpointError, match=r'no data\.pkl in the zip'):
    load_torch_file(path)


def test_missing_empty_and_directory_paths(tmp_path):
  with pytest.raises(CheckpointError, match='no such file') as err:
    load_torch_file(tmp_path / 'missing.pt')
  assert 'missing.pt' in str(err.value)
  empty = tmp_path / 'empty.pkl'
  empty.write_bytes(b'')
  with pytest.raises(CheckpointError, match='empty'):
    load_network_pickle(empty)
  with pytest.raises(CheckpointError, match='directory'):
    load_torch_file(tmp_path)


def test_wrong_loader_points_to_the_right_one(tmp_path):
  pt, pkl = tmp_path / 'a.pt', tmp_path / 'b.pkl'
  torch_writer.save({'w': np.ones(2, np.float32)}, pt)
  torch_writer.save_network_pickle({'G_ema': None}, pkl)
  with pytest.raises(CheckpointError, match=r'load_torch_file\(\)'):
    load_network_pickle(pt)
  with pytest.raises(CheckpointError, match=r'load_network_pickle\(\)'):
    load_torch_file(pkl)
