"""Read official PyTorch checkpoints without torch and without running their code.

Two kinds of file are supported:

* `torch.save` files (rosinality .pt): the zip format of torch >= 1.6 and the
  older "legacy" stream format. Tensors come back as numpy arrays.
* NVIDIA stylegan2-ada-pytorch network pickles (.pkl): persistent modules come
  back as `PersistentObject` trees; `module_state_dict` and `module_attributes`
  flatten them into torch-style names.

Everything goes through `SafeUnpickler`; problems raise `CheckpointError`
naming the file, what is wrong and how to fix it.
"""
import io
import os
import pickle
import struct
import zipfile
import zlib
from typing import Any, BinaryIO, Callable, Dict, Iterator, Tuple, Union

import numpy as np

from fsig_jax.convert.safe_unpickle import (ElementType, PendingStorage, PersistentObject,
                                            SafeUnpickler, TorchType, decode_storage)
from fsig_jax.errors import CheckpointError

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001
_LEGACY_HEADERS = tuple(pickle.dumps(LEGACY_MAGIC, protocol=p) for p in range(2, 6))
_EXPECTED = 'expected a rosinality .pt or an NVIDIA stylegan2-ada .pkl'
_CORRUPT_ERRORS = (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, zlib.error,
                   struct.error, ValueError, TypeError, KeyError, IndexError,
                   AttributeError, OverflowError, MemoryError, RecursionError, OSError)
_TORCH_BOOKKEEPING = ('training',)  # nn.Module attributes that are not settings
PathLike = Union[str, 'os.PathLike[str]']


# --- public API -----------------------------------------------------------------

class _Unpickler(SafeUnpickler):
  """`SafeUnpickler` that reads nested torch.save storages with this module."""

  def _load_from_bytes(self, data):
    if not isinstance(data, (bytes, bytearray)):
      raise ValueError('torch.storage._load_from_bytes expects bytes')
    return load_torch_bytes(bytes(data), f'{self.label} (nested storage)')


def load_checkpoint(path: PathLike) -> Any:
  """Loads a torch.save file or an NVIDIA network pickle, told apart by its bytes."""
  label = os.fspath(path)
  with _open_checkpoint(label) as f:
    kind = _sniff(f)
    if kind in ('zip', 'legacy'):
      return _guarded(label, lambda: _read_torch_stream(f, label, kind))
    if kind == 'plain-pickle':
      return _guarded(label, lambda: _Unpickler(f, label).load())
    raise _not_a_checkpoint(label, kind)


def load_torch_file(path: PathLike) -> Any:
  """Loads a `torch.save` file (zip or legacy format) with tensors as numpy arrays."""
  label = os.fspath(path)
  with _open_checkpoint(label) as f:
    kind = _sniff(f)
    if kind == 'plain-pickle':
      raise CheckpointError(f'{label} is a plain pickle, not a torch.save file; if it is an '
                            'NVIDIA stylegan2-ada network pickle, read it with '
                            'load_network_pickle()')
    if kind not in ('zip', 'legacy'):
      raise _not_a_checkpoint(label, kind)
    return _guarded(label, lambda: _read_torch_stream(f, label, kind))


def load_network_pickle(path: PathLike) -> Any:
  """Loads an NVIDIA network pickle; persistent modules become PersistentObjects."""
  label = os.fspath(path)
  with _open_checkpoint(label) as f:
    kind = _sniff(f)
    if kind in ('zip', 'legacy'):
      raise CheckpointError(f'{label} is a torch.save file, not an NVIDIA network pickle; '
                            'read it with load_torch_file()')
    if kind != 'plain-pickle':
      raise _not_a_checkpoint(label, kind)
    return _guarded(label, lambda: _Unpickler(f, label).load())


def load_torch_bytes(data: bytes, label: str) -> Any:
  """Loads a `torch.save` held in memory, e.g. a storage nested in a network pickle."""
  f = io.BytesIO(data)
  kind = _sniff(f)
  if kind not in ('zip', 'legacy'):
    raise CheckpointError(f'{label}: the embedded bytes are not a torch.save stream; the file '
                          'is truncated or corrupt; re-download or re-save it')
  return _guarded(label, lambda: _read_torch_stream(f, label, kind))


def module_state_dict(obj: PersistentObject) -> Dict[str, np.ndarray]:
  """Flattens a persistent module tree into torch `state_dict()` names and order.

  Parameters and persistent buffers are included ('mapping.w_avg',
  'synthesis.b4.conv1.noise_const'); None entries are skipped, as torch does.
  """
  out = {}
  for prefix, module in _walk_modules(obj):
    skip = module.state.get('_non_persistent_buffers_set') or ()
    for name, value in _entries(module, '_parameters'):
      if value is not None:
        out[prefix + name] = value
    for name, value in _entries(module, '_buffers'):
      if value is not None and name not in skip:
        out[prefix + name] = value
  return out


def module_attributes(obj: PersistentObject) -> Dict[str, Any]:
  """Flattens the plain attributes of a module tree ('b4.mbstd.group_size').

  These carry the settings tensors cannot show (conv_clamp, architecture,
  w_avg_beta...). torch bookkeeping (`training` and `_`-prefixed keys such as
  hook dicts) and submodules are left out.
  """
  out = {}
  for prefix, module in _walk_modules(obj):
    for name, value in module.state.items():
      if (not isinstance(name, str) or name.startswith('_') or name in _TORCH_BOOKKEEPING
          or isinstance(value, PersistentObject)):
        continue
      out[prefix + name] = value
  return out


# --- files and sniffing ------------------------------------------------------------

def _open_checkpoint(label: str) -> BinaryIO:
  """Opens a checkpoint for reading, with clear errors for missing or empty files."""
  if not os.path.exists(label):
    raise CheckpointError(f'{label}: no such file; check the path ({_EXPECTED})')
  if not os.path.isfile(label):
    raise CheckpointError(f'{label} is a directory, not a checkpoint file; pass the .pt or '
                          '.pkl file itself')
  if os.path.getsize(label) == 0:
    raise CheckpointError(f'{label}: the file is empty; re-download or re-save it')
  try:
    return open(label, 'rb')
  except OSError as e:
    raise CheckpointError(f'{label}: cannot be read ({e}); check its permissions') from e


def _sniff(f: BinaryIO) -> str:
  """Names the format from the first bytes and rewinds: zip, legacy, plain-pickle..."""
  head = f.read(512)
  f.seek(0)
  if head[:4] in (b'PK\x03\x04', b'PK\x05\x06'):
    return 'zip'
  if head.startswith(_LEGACY_HEADERS):
    return 'legacy'
  if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
    return 'plain-pickle'
  if head[257:262] == b'ustar':
    return 'a tar archive (torch.save before 0.4 is not supported; re-save it with torch >= 1.6)'
  for magic, what in ((b'\x89PNG', 'a PNG image'), (b'\xff\xd8\xff', 'a JPEG image'),
                      (b'\x1f\x8b', 'gzip data (decompress it first)')):
    if head.startswith(magic):
      return what
  if head.lstrip()[:1] == b'<':
    return 'an HTML/XML page (a failed download?)'
  return f'unrecognised data starting with {head[:8]!r}'


def _not_a_checkpoint(label: str, kind: str) -> CheckpointError:
  """The error for a file that is neither format, saying what it looks like."""
  return CheckpointError(f'{label}: unknown checkpoint format: not a PyTorch checkpoint or '
                         f'network pickle (it looks like {kind}); {_EXPECTED}')


def _guarded(label: str, read: Callable[[], Any]) -> Any:
  """Runs `read`, turning low-level decoding failures into CheckpointErrors."""
  try:
    return read()
  except CheckpointError:
    raise
  except _CORRUPT_ERRORS as e:
    detail = f'{type(e).__name__}: {e}'[:300]
    raise CheckpointError(f'{label}: the file is truncated or corrupt ({detail}); '
                          're-download or re-save it') from e


def _read_torch_stream(f: BinaryIO, label: str, kind: str) -> Any:
  """Reads a torch.save stream of a sniffed kind ('zip' or 'legacy')."""
  return _read_zip(f, label) if kind == 'zip' else _read_legacy(f, label)


# --- zip format (torch >= 1.6) -------------------------------------------------------

def _read_zip(f: BinaryIO, label: str) -> Any:
  """Reads `<prefix>/data.pkl`, resolving storages from `<prefix>/data/<key>`."""
  try:
    zf = zipfile.ZipFile(f)
  except zipfile.BadZipFile as e:
    raise CheckpointError(f'{label}: the zip archive is truncated or corrupt (bad central '
                          f'directory: {e}); '
                          're-download or re-save it') from e
  with zf:
    prefix = _zip_prefix(zf, label)
    byteorder = _zip_byteorder(zf, prefix, label)
    loader = _zip_storage_loader(zf, prefix, byteorder, label)
    data = io.BytesIO(zf.read(prefix + 'data.pkl'))
    return _Unpickler(data, label, loader).load()


def _zip_prefix(zf: zipfile.ZipFile, label: str) -> str:
  """The archive folder holding data.pkl ('archive/' in recent torch versions)."""
  names = sorted(n for n in zf.namelist()
                 if n == 'data.pkl' or (n.endswith('/data.pkl') and n.count('/') == 1))
  if not names:
    raise CheckpointError(f'{label} is not a PyTorch checkpoint (no data.pkl in the zip); '
                          f'{_EXPECTED}')
  return names[0][:-len('data.pkl')]


def _zip_byteorder(zf: zipfile.ZipFile, prefix: str, label: str) -> str:
  """The byte order the storages were written in (little when not recorded)."""
  try:
    order = zf.read(prefix + 'byteorder').decode('ascii', 'replace').strip()
  except KeyError:
    return 'little'
  if order not in ('little', 'big'):
    raise CheckpointError(f'{label}: unknown storage byte order {order!r}; the file is '
                          'truncated or corrupt; re-download or re-save it')
  return order


def _zip_storage_loader(zf: zipfile.ZipFile, prefix: str, byteorder: str,
                        label: str) -> Callable:
  """Resolves ('storage', type, key, location, numel) ids from data/<key>."""
  cache = {}

  def load(pid):
    element, key, numel = _storage_pid(pid, 5)[:3]
    if (key, element.name) not in cache:
      try:
        raw = zf.read(f'{prefix}data/{key}')
      except KeyError as e:
        raise CheckpointError(f'{label}: storage data/{key} is missing from the zip; the file '
                              'is truncated or corrupt; re-download or re-save it') from e
      cache[key, element.name] = decode_storage(raw, element, byteorder)
    return _check_numel(cache[key, element.name], numel, key)
  return load


# --- legacy format (torch < 1.6, and storages nested in network pickles) ------------

def _read_legacy(f: BinaryIO, label: str) -> Any:
  """Reads magic, version, sys_info, the object, its storage keys, then the storages.

  Storage bytes follow the object pickle, so it is read twice: once to learn
  each storage's element type, then again with the storages in hand.
  """
  _plain_load(f, label)  # the magic number, already checked by _sniff
  version = _plain_load(f, label)
  if version != LEGACY_PROTOCOL:
    raise CheckpointError(f'{label}: unsupported legacy torch.save protocol version '
                          f'{version!r} (expected {LEGACY_PROTOCOL}); re-save it with torch >= 1.6')
  _plain_load(f, label)  # sys_info; storages are always little-endian
  start = f.tell()
  pending = {}
  _Unpickler(f, label, _legacy_collector(pending)).load()
  keys = _plain_load(f, label)
  if not isinstance(keys, list):
    raise ValueError('the storage key list is missing')
  raw = {key: _read_legacy_storage(f, key, pending) for key in keys}
  f.seek(start)
  return _Unpickler(f, label, _legacy_resolver(raw)).load()


def _plain_load(f: BinaryIO, label: str) -> Any:
  """Reads one pickle that may not refer to storages (legacy headers, key list)."""
  return _Unpickler(f, label).load()


def _legacy_collector(pending: Dict[str, Tuple[ElementType, int]]) -> Callable:
  """First pass: records each root storage's element type and size."""
  def collect(pid):
    element, key, numel, _ = _storage_pid(pid, 6)
    pending.setdefault(key, (element, numel))
    return PendingStorage()
  return collect


def _legacy_resolver(raw: Dict[str, bytes]) -> Callable:
  """Second pass: decodes storages (and old-style storage views) on demand."""
  cache = {}

  def resolve(pid):
    element, key, numel, view = _storage_pid(pid, 6)
    if key not in raw:
      raise ValueError(f'storage {key!r} has no data after the pickle')
    if (key, element.name) not in cache:
      cache[key, element.name] = decode_storage(raw[key], element)
    flat = _check_numel(cache[key, element.name], numel, key)
    if view is None:
      return flat
    _, offset, size = view
    offset, size = int(offset), int(size)
    if offset < 0 or size < 0 or offset + size > len(flat):
      raise ValueError(f'storage view {view!r} lies outside storage {key!r}')
    return flat[offset:offset + size]
  return resolve


def _read_legacy_storage(f: BinaryIO, key: str, pending: Dict) -> bytes:
  """Reads one storage: an int64 element count, then the raw little-endian bytes."""
  if key not in pending:
    raise ValueError(f'storage {key!r} is listed but no tensor uses it')
  element, numel = pending[key]
  header = f.read(8)
  if len(header) < 8:
    raise EOFError(f'the data of storage {key!r} is missing')
  (count,) = struct.unpack('<q', header)
  if count != numel:
    raise ValueError(f'storage {key!r} holds {count} elements, the pickle expects {numel}')
  nbytes = count * element.itemsize
  raw = f.read(nbytes) if nbytes <= _remaining(f) else b''
  if len(raw) != nbytes:
    raise EOFError(f'the data of storage {key!r} ends early')
  return raw


def _remaining(f: BinaryIO) -> int:
  """Bytes left after the current position (guards reads against bogus sizes)."""
  pos = f.tell()
  end = f.seek(0, io.SEEK_END)
  f.seek(pos)
  return end - pos


# --- shared helpers ----------------------------------------------------------------

def _storage_pid(pid, length: int) -> Tuple[ElementType, str, int, Any]:
  """Checks a ('storage', type, key, location, numel[, view]) id; returns its parts."""
  if not isinstance(pid, tuple) or len(pid) != length:
    raise ValueError(f'unexpected persistent id {pid!r:.100}')
  typename, storage_type, key, _location, numel = pid[:5]
  if isinstance(typename, bytes):
    typename = typename.decode('ascii', 'replace')
  if typename != 'storage':
    raise ValueError(f'persistent id of type {typename!r} is not supported (whole saved '
                     'nn.Modules are not; re-save model.state_dict())')
  if not isinstance(storage_type, TorchType):
    raise ValueError(f'persistent id names {type(storage_type).__name__}, not a storage type')
  view = pid[5] if length == 6 else None
  return storage_type.element, str(key), int(numel), view


def _check_numel(flat: np.ndarray, numel: int, key: str) -> np.ndarray:
  """Returns `flat` if it holds the `numel` elements its persistent id promises."""
  if numel < 0 or len(flat) < numel:
    raise ValueError(f'storage {key!r} holds {len(flat)} elements, the pickle expects {numel}')
  return flat


def _entries(module: PersistentObject, key: str):
  """The items of one of a module's `_parameters`/`_buffers`/`_modules` dicts."""
  entries = module.state.get(key) or {}
  if not isinstance(entries, dict):
    raise CheckpointError(f'{module.class_name}.{key} is a {type(entries).__name__}, not a '
                          'dict; the network pickle is corrupt; re-download or re-save it')
  return entries.items()


def _walk_modules(obj: PersistentObject,
                  prefix: str = '') -> Iterator[Tuple[str, PersistentObject]]:
  """Yields (prefix, module) for `obj` and its submodules in torch's order."""
  if not isinstance(obj, PersistentObject):
    raise TypeError(f'expected a PersistentObject from load_network_pickle, got '
                    f'{type(obj).__name__}')
  yield prefix, obj
  for name, child in _entries(obj, '_modules'):
    if child is not None:
      yield from _walk_modules(child, f'{prefix}{name}.')
