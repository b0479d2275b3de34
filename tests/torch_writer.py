"""Test-only writer of torch checkpoint formats, so fixtures need no torch.

It emits the same globals torch does (`torch._utils._rebuild_tensor_v2`,
`torch.FloatStorage`, `collections.OrderedDict`, ...) through pickle's pure
Python pickler, whose `save_global` is overridden so the torch names need not
be importable. Not a general serializer: just enough for the loader tests.
"""
import collections
import io
import pickle
import struct
import sys
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_STORAGE_NAMES = {
    'float64': 'DoubleStorage', 'float32': 'FloatStorage', 'float16': 'HalfStorage',
    'bfloat16': 'BFloat16Storage', 'int64': 'LongStorage', 'int32': 'IntStorage',
    'int16': 'ShortStorage', 'int8': 'CharStorage', 'uint8': 'ByteStorage',
    'bool': 'BoolStorage'}


class Global:
  """A `module.name` reference that pickles as a GLOBAL without importing it."""

  def __init__(self, module, name):
    self.module, self.name = module, name

  def __call__(self, *args):
    raise TypeError('a pickling marker, never called')

  def __reduce__(self):
    return self.name  # pickle then calls save_global, overridden below


class Storage:
  """A flat typed storage; tensors sharing one instance share its bytes."""

  def __init__(self, data, type_name=None):
    self.data = np.ascontiguousarray(data).reshape(-1)
    self.type_name = type_name or _STORAGE_NAMES[self.data.dtype.name]

  @property
  def type_global(self):
    return Global('torch', self.type_name)

  def raw(self):
    assert sys.byteorder == 'little', 'torch_writer assumes a little-endian host'
    return self.data.tobytes()


class StorageView:
  """A pre-1.0 storage view: `size` elements of `root` from `offset` (legacy only)."""

  def __init__(self, root, offset, size):
    self.root, self.offset, self.size = root, offset, size


class Tensor:
  """A strided view of a Storage, as torch pickles it (offset/stride in elements)."""

  def __init__(self, storage, offset, size, stride, parameter=False):
    self.storage, self.offset = storage, offset
    self.size, self.stride, self.parameter = tuple(size), tuple(stride), parameter

  @classmethod
  def of(cls, array, parameter=False):
    a = np.asarray(array)
    strides = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim))  # C order
    return cls(Storage(a), 0, a.shape, strides, parameter)

  def __reduce__(self):
    args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
    tensor = (Global('torch._utils', '_rebuild_tensor_v2'), args)
    if not self.parameter:
      return tensor
    return (Global('torch._utils', '_rebuild_parameter'),
            (Reduced(tensor), True, collections.OrderedDict()))


class Module:
  """An NVIDIA persistent module: pickles as `_reconstruct_persistent_obj(meta)`."""

  def __init__(self, class_name, state):
    self.class_name, self.state = class_name, state

  def __reduce__(self):
    meta = dict(type='class', version=6, module_src='# source removed\n',
                class_name=self.class_name, state=self.state)
    return (Global('torch_utils.persistence', '_reconstruct_persistent_obj'), (meta,))


class Reduced:
  """Pickles as a given reduce tuple: (callable, args)."""

  def __init__(self, reduced):
    self.reduced = reduced

  def __reduce__(self):
    return self.reduced


class _Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """Pure-Python pickler writing Global markers verbatim and tensors as torch does."""

  def __init__(self, file, protocol, storage_pid=None, nested_storages=None):
    super().__init__(file, protocol)
    self.storage_pid = storage_pid  # Storage -> persistent id (torch.save formats)
    self.nested_storages = nested_storages  # 'zip'/'legacy' for network pickles

  def save_global(self, obj, name=None):
    if not isinstance(obj, Global):
      return super().save_global(obj, name)
    self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())
    self.memoize(obj)

  def persistent_id(self, obj):
    if isinstance(obj, (Storage, StorageView)) and self.storage_pid is not None:
      return self.storage_pid(obj)
    return None

  def reducer_override(self, obj):
    if isinstance(obj, np.ndarray):
      return Tensor.of(obj).__reduce__()
    if isinstance(obj, Storage) and self.nested_storages:
      payload = torch_save_bytes(obj, self.nested_storages)
      return (Global('torch.storage', '_load_from_bytes'), (payload,))
    return NotImplemented


def _dumps(obj, protocol=2, storage_pid=None, nested_storages=None):
  buf = io.BytesIO()
  _Pickler(buf, protocol, storage_pid, nested_storages).dump(obj)
  return buf.getvalue()


def _collect_pids(storages, legacy):
  """A persistent_id function that numbers storages in first-use order."""
  def pid(obj):
    storage = obj.root if isinstance(obj, StorageView) else obj
    key = storages.setdefault(id(storage), (str(len(storages)), storage))[0]
    if not legacy:
      return ('storage', storage.type_global, key, 'cpu', storage.data.size)
    view = (f'view{id(obj)}', obj.offset, obj.size) if obj is not storage else None
    return ('storage', storage.type_global, key, 'cpu', storage.data.size, view)
  return pid


def torch_save_bytes(obj, fmt='zip'):
  """`torch.save(obj)` bytes in the 'zip' or 'legacy' format."""
  storages = {}
  data_pkl = _dumps(obj, storage_pid=_collect_pids(storages, fmt == 'legacy'))
  if fmt == 'legacy':
    return legacy_stream(data_pkl, storages.values())
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as zf:
    zf.writestr('archive/data.pkl', data_pkl)
    zf.writestr('archive/byteorder', b'little')
    for key, storage in storages.values():
      zf.writestr(f'archive/data/{key}', storage.raw())
    zf.writestr('archive/version', b'3\n')
  return buf.getvalue()


def legacy_stream(data_pkl, storages=()):
  """A legacy torch.save stream around an object pickle and its (key, Storage)s."""
  sys_info = dict(protocol_version=1001, little_endian=True,
                  type_sizes=dict(short=2, int=4, long=8))
  parts = [pickle.dumps(h, protocol=2) for h in (LEGACY_MAGIC, 1001, sys_info)]
  parts += [data_pkl, pickle.dumps([key for key, _ in storages], protocol=2)]
  for _, storage in storages:
    parts += [struct.pack('<q', storage.data.size), storage.raw()]
  return b''.join(parts)


def save(obj, path, fmt='zip'):
  """Writes `obj` to `path` like `torch.save` (fmt: 'zip' or 'legacy')."""
  with open(path, 'wb') as f:
    f.write(torch_save_bytes(obj, fmt))


def save_network_pickle(obj, path, nested='legacy', protocol=4):
  """Writes `obj` like NVIDIA's pickle.dump: storages as nested torch.saves."""
  with open(path, 'wb') as f:
    f.write(_dumps(obj, protocol, nested_storages=nested))
