"""Test-only extensions of the package's torch-format writer (fsig_jax/convert/torch_writer.py).

The package writes what fsig-jax exports (torch.save's zip format). The loader
tests also need the formats nobody should write any more: the legacy
torch.save stream with pre-1.0 storage views, and NVIDIA network pickles whose
storages are nested torch.saves. They are built here on the same pickler,
storage and tensor classes, so there is one writer.
"""
import pickle
import struct

from fsig_jax.convert.torch_writer import (Global, Reduced, Storage, Tensor, TorchPickler, dumps,
                                           torch_save_bytes as _zip_bytes)

__all__ = ['Global', 'Reduced', 'Storage', 'Tensor', 'StorageView', 'Module', 'torch_save_bytes',
           'legacy_stream', 'save', 'save_network_pickle']

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class StorageView:
  """A pre-1.0 storage view: `size` elements of `root` from `offset` (legacy only)."""

  def __init__(self, root, offset, size):
    self.root, self.offset, self.size = root, offset, size


class Module:
  """An NVIDIA persistent module: pickles as `_reconstruct_persistent_obj(meta)`."""

  def __init__(self, class_name, state):
    self.class_name, self.state = class_name, state

  def __reduce__(self):
    meta = dict(type='class', version=6, module_src='# source removed\n',
                class_name=self.class_name, state=self.state)
    return (Global('torch_utils.persistence', '_reconstruct_persistent_obj'), (meta,))


class _Pickler(TorchPickler):
  """Adds storage views (legacy pids) and storages nested as torch.saves (network pickles)."""

  nested_storages = None  # 'zip'/'legacy' for network pickles

  def persistent_id(self, obj):
    if isinstance(obj, StorageView) and self.storage_pid is not None:
      return self.storage_pid(obj)
    return super().persistent_id(obj)

  def reducer_override(self, obj):
    if isinstance(obj, Storage) and self.nested_storages:
      payload = torch_save_bytes(obj, self.nested_storages)
      return (Global('torch.storage', '_load_from_bytes'), (payload,))
    return super().reducer_override(obj)


def _legacy_pids(storages):
  """A legacy persistent_id function numbering storages in first-use order."""
  def pid(obj):
    storage = obj.root if isinstance(obj, StorageView) else obj
    key = storages.setdefault(id(storage), (str(len(storages)), storage))[0]
    view = (f'view{id(obj)}', obj.offset, obj.size) if obj is not storage else None
    return ('storage', storage.type_global, key, 'cpu', storage.data.size, view)
  return pid


def torch_save_bytes(obj, fmt='zip'):
  """`torch.save(obj)` bytes in the 'zip' (the package writer) or 'legacy' format."""
  if fmt == 'zip':
    return _zip_bytes(obj)
  storages = {}
  data_pkl = dumps(obj, storage_pid=_legacy_pids(storages), pickler=_Pickler)
  return legacy_stream(data_pkl, storages.values())


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
  class Pickler(_Pickler):
    nested_storages = nested
  with open(path, 'wb') as f:
    f.write(dumps(obj, protocol, pickler=Pickler))
