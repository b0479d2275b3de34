"""Write `torch.save` files (the zip format of torch >= 1.6) without torch.

The reverse of `torch_file.load_torch_file`, for exporting models to the
PyTorch ecosystem (`rosinality.export_checkpoint`). It emits what
`torch.save` does (torch/serialization.py `_save`, torch 2.x): a zip archive
`archive/` holding `data.pkl` (pickle protocol 2; tensors as
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, OrderedDict())`, storages as persistent ids
`('storage', torch.FloatStorage, key, 'cpu', numel)`), `.format_version`,
`.storage_alignment`, `byteorder`, one `data/<key>` record per storage
starting on a 64-byte boundary (torch's PyTorchStreamWriter pads the local
header's extra field the same way, so `torch.load(mmap=True)` works), `version`
and `.data/serialization_id`. Every global it writes is on
`torch.load(weights_only=True)`'s allow-list.

Numpy arrays in the object become tensors (C-contiguous, own storage each);
`Tensor` and `Storage` express views and shared storages. The torch names are
written as pickle GLOBAL opcodes through pickle's pure-Python pickler, so torch
need not be importable. Deviations from torch.save: the archive folder is always
`archive/`, and the serialization id is derived from the content (torch draws it
at random), so the same object always gives the same bytes.
"""
import collections
import hashlib
import io
import os
import pickle
import struct
import sys
import zipfile
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from fsig_jax.utils.files import write_atomic

STORAGE_ALIGNMENT = 64  # torch/csrc/jit/serialization: kFieldAlignment
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the bytes depend only on the content
_STORAGE_NAMES = {
    'float64': 'DoubleStorage', 'float32': 'FloatStorage', 'float16': 'HalfStorage',
    'bfloat16': 'BFloat16Storage', 'int64': 'LongStorage', 'int32': 'IntStorage',
    'int16': 'ShortStorage', 'int8': 'CharStorage', 'uint8': 'ByteStorage',
    'bool': 'BoolStorage'}


class Global:
  """A `module.name` reference that pickles as a GLOBAL without importing it."""

  def __init__(self, module: str, name: str):
    self.module, self.name = module, name

  def __call__(self, *args):
    raise TypeError('a pickling marker, never called')

  def __reduce__(self):
    return self.name  # pickle then calls save_global, overridden below


class Storage:
  """A flat typed storage; tensors sharing one instance share its bytes."""

  def __init__(self, data, type_name: Optional[str] = None):
    self.data = np.ascontiguousarray(data).reshape(-1)
    if type_name is None and self.data.dtype.name not in _STORAGE_NAMES:
      raise ValueError(f'torch has no storage type for numpy dtype {self.data.dtype}; '
                       f'convert the array to one of {sorted(_STORAGE_NAMES)}')
    self.type_name = type_name or _STORAGE_NAMES[self.data.dtype.name]

  @property
  def type_global(self) -> Global:
    return Global('torch', self.type_name)

  def raw(self) -> bytes:
    """The little-endian bytes torch stores."""
    data = self.data
    if sys.byteorder != 'little' and data.dtype.itemsize > 1:
      data = data.byteswap()
    return data.tobytes()


class Tensor:
  """A strided view of a Storage, as torch pickles it (offset/stride in elements)."""

  def __init__(self, storage: Storage, offset: int, size, stride, parameter: bool = False):
    self.storage, self.offset = storage, offset
    self.size, self.stride, self.parameter = tuple(size), tuple(stride), parameter

  @classmethod
  def of(cls, array, parameter: bool = False) -> 'Tensor':
    """A tensor with its own C-contiguous storage holding `array`."""
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


class Reduced:
  """Pickles as a given reduce tuple: (callable, args)."""

  def __init__(self, reduced: Tuple[Any, ...]):
    self.reduced = reduced

  def __reduce__(self):
    return self.reduced


class TorchPickler(pickle._Pickler):  # pylint: disable=protected-access
  """Pure-Python pickler writing Global markers verbatim and numpy arrays as tensors.

  `storage_pid(storage)` gives the persistent id of each Storage met.
  """

  def __init__(self, file, protocol: int = 2,
               storage_pid: Optional[Callable[[Any], Any]] = None):
    super().__init__(file, protocol)
    self.storage_pid = storage_pid

  def save_global(self, obj, name=None):
    if not isinstance(obj, Global):
      return super().save_global(obj, name)
    self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())
    self.memoize(obj)
    return None

  def persistent_id(self, obj):
    if isinstance(obj, Storage) and self.storage_pid is not None:
      return self.storage_pid(obj)
    return None

  def reducer_override(self, obj):
    if isinstance(obj, np.ndarray):
      return Tensor.of(obj).__reduce__()
    return NotImplemented


def dumps(obj, protocol: int = 2, storage_pid=None, pickler=TorchPickler) -> bytes:
  """The pickle bytes of `obj`, storages written through `storage_pid`."""
  buf = io.BytesIO()
  pickler(buf, protocol, storage_pid).dump(obj)
  return buf.getvalue()


def zip_storage_pids(storages: Dict[int, Tuple[str, Storage]]) -> Callable[[Storage], tuple]:
  """A persistent_id function numbering storages '0', '1', ... in first-use order."""
  def pid(storage):
    key = storages.setdefault(id(storage), (str(len(storages)), storage))[0]
    return ('storage', storage.type_global, key, 'cpu', storage.data.size)
  return pid


def _aligned_record(zf: zipfile.ZipFile, name: str, data: bytes):
  """Writes a stored record whose data starts on a STORAGE_ALIGNMENT boundary.

  The padding goes in the local header's extra field, as an 'FB' block, which
  is what torch's PyTorchStreamWriter (caffe2/serialize/inline_container.cc) does.
  """
  info = zipfile.ZipInfo(name, _ZIP_DATE)
  info.compress_type = zipfile.ZIP_STORED
  start = zf.fp.tell() + 30 + len(name.encode('utf-8')) + 4  # header + 'FB' block head
  pad = -start % STORAGE_ALIGNMENT
  info.extra = b'FB' + struct.pack('<H', pad) + b'Z' * pad
  zf.writestr(info, data)


def torch_save_bytes(obj, prefix: str = 'archive') -> bytes:
  """`torch.save(obj)` bytes (zip format, torch >= 1.6)."""
  storages: Dict[int, Tuple[str, Storage]] = {}
  data_pkl = dumps(obj, storage_pid=zip_storage_pids(storages))
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as zf:
    _aligned_record(zf, f'{prefix}/data.pkl', data_pkl)
    _aligned_record(zf, f'{prefix}/.format_version', b'1')
    _aligned_record(zf, f'{prefix}/.storage_alignment', str(STORAGE_ALIGNMENT).encode())
    _aligned_record(zf, f'{prefix}/byteorder', b'little')
    digest = hashlib.sha256(data_pkl)
    for key, storage in storages.values():
      raw = storage.raw()
      digest.update(raw)
      _aligned_record(zf, f'{prefix}/data/{key}', raw)
    _aligned_record(zf, f'{prefix}/version', b'3\n')
    serial = str(int(digest.hexdigest(), 16))[:40].rjust(40, '0')
    _aligned_record(zf, f'{prefix}/.data/serialization_id', serial.encode())
  return buf.getvalue()


def save(obj, path) -> str:
  """Writes `obj` to `path` like `torch.save` (atomically: a temp file, then a rename)."""
  data = torch_save_bytes(obj)

  def write(tmp):
    with open(tmp, 'wb') as f:
      f.write(data)
  return write_atomic(os.fspath(path), write)  # an unwritable path is one WriteError
