"""A restricted unpickler for PyTorch checkpoints that never executes code.

`torch.load` and `pickle.load` import and call whatever a file names, so a
downloaded checkpoint can run arbitrary code. `SafeUnpickler` resolves only an
allow-list of globals, each mapped to a harmless local implementation: tensors
become numpy arrays, torch containers become dicts and tuples, and NVIDIA's
persistent modules become `PersistentObject` records whose embedded source is
never run. torch itself is never imported.
"""
import collections
import dataclasses
import pickle
import types
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from fsig_jax.errors import UnsafePickleError

try:  # numpy >= 2 keeps the pickle helpers in numpy._core
  from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
  from numpy.core import multiarray as _multiarray


@dataclasses.dataclass(frozen=True)
class ElementType:
  """How one torch element type lies on disk: a little-endian numpy dtype."""
  name: str
  raw: str
  bfloat16: bool = False  # widened to float32 on read: numpy has no bfloat16

  @property
  def itemsize(self) -> int:
    """Bytes per element on disk."""
    return np.dtype(self.raw).itemsize


_ELEMENTS = {e.name: e for e in (
    ElementType('float64', '<f8'), ElementType('float32', '<f4'),
    ElementType('float16', '<f2'), ElementType('bfloat16', '<u2', bfloat16=True),
    ElementType('int64', '<i8'), ElementType('int32', '<i4'), ElementType('int16', '<i2'),
    ElementType('int8', '|i1'), ElementType('uint8', '|u1'), ElementType('uint16', '<u2'),
    ElementType('uint32', '<u4'), ElementType('uint64', '<u8'), ElementType('bool', '|b1'),
    ElementType('complex64', '<c8'), ElementType('complex128', '<c16'))}

# `torch.<Name>Storage` globals name the element type of a storage.
_STORAGE_ELEMENTS = {
    'DoubleStorage': 'float64', 'FloatStorage': 'float32', 'HalfStorage': 'float16',
    'BFloat16Storage': 'bfloat16', 'LongStorage': 'int64', 'IntStorage': 'int32',
    'ShortStorage': 'int16', 'CharStorage': 'int8', 'ByteStorage': 'uint8',
    'BoolStorage': 'bool', 'ComplexFloatStorage': 'complex64',
    'ComplexDoubleStorage': 'complex128', 'UntypedStorage': 'uint8'}

# `torch.<dtype>` globals (arguments of `_rebuild_tensor_v3`) and their aliases.
_DTYPE_ALIASES = {
    'float': 'float32', 'double': 'float64', 'half': 'float16', 'long': 'int64',
    'int': 'int32', 'short': 'int16', 'cfloat': 'complex64', 'cdouble': 'complex128'}

# Python 2 module names that protocol 0-2 pickles still use.
_PY2_MODULES = {'__builtin__': 'builtins', 'copy_reg': 'copyreg'}


@dataclasses.dataclass(frozen=True)
class TorchType:
  """Stands in for a `torch.FloatStorage`-style or `torch.float32`-style global."""
  name: str
  element: ElementType


class PendingStorage:
  """A storage whose bytes follow the pickle (legacy format, first pass)."""


@dataclasses.dataclass
class PersistentObject:
  """An NVIDIA `torch_utils.persistence` module as data: class name and `__dict__`.

  `state` is the module's `__dict__`: `_parameters` and `_buffers` hold numpy
  arrays, `_modules` nested PersistentObjects, other keys plain attributes.
  """
  class_name: str
  module_name: Optional[str]
  state: Dict[str, Any]
  version: Optional[int] = None

  @property
  def init_kwargs(self) -> Dict[str, Any]:
    """The constructor keyword arguments the persistence decorator recorded."""
    return dict(self.state.get('_init_kwargs') or {})


def decode_storage(raw: bytes, element: ElementType, byteorder: str = 'little') -> np.ndarray:
  """Reads raw storage bytes as a flat array (bfloat16 widened to float32)."""
  dtype = np.dtype(element.raw)
  if byteorder == 'big':
    dtype = dtype.newbyteorder('>')
  if len(raw) % dtype.itemsize:
    raise ValueError(f'a storage of {len(raw)} bytes is not a whole number of '
                     f'{element.name} elements')
  flat = np.frombuffer(raw, dtype)
  if element.bfloat16:
    return (flat.astype(np.uint32) << 16).view(np.float32)
  if not dtype.isnative:
    flat = flat.astype(dtype.newbyteorder('='))
  return flat


def _check_view(numel: int, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...]):
  """Refuses strided views that would read outside their storage."""
  if len(size) != len(stride):
    raise ValueError(f'tensor size {size} and stride {stride} differ in length')
  if offset < 0 or min(size + stride, default=0) < 0:
    raise ValueError(f'negative tensor offset, size or stride ({offset}, {size}, {stride})')
  if 0 in size:
    return
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= numel:
    raise ValueError(f'tensor view (offset {offset}, size {size}, stride {stride}) reads '
                     f'past the end of its {numel}-element storage')


def rebuild_tensor(storage, storage_offset, size, stride) -> Optional[np.ndarray]:
  """A contiguous copy of a strided view; offset and strides count elements."""
  if isinstance(storage, PendingStorage):
    return None
  if not isinstance(storage, np.ndarray) or storage.ndim != 1:
    raise ValueError(f'a tensor refers to {type(storage).__name__}, not a storage')
  offset = int(storage_offset)
  size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
  _check_view(len(storage), offset, size, stride)
  if 0 in size:
    return np.zeros(size, storage.dtype)
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], size, [s * storage.itemsize for s in stride], writeable=False)
  return np.array(view, order='C')


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  """torch._utils._rebuild_tensor_v2; gradients, hooks and metadata are dropped."""
  return rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
  """torch._utils._rebuild_tensor_v3: an untyped byte storage read as `dtype`."""
  if not isinstance(dtype, TorchType):
    raise ValueError(f'_rebuild_tensor_v3 got dtype {type(dtype).__name__}, not a torch dtype')
  if isinstance(storage, np.ndarray) and storage.dtype == np.uint8 and dtype.name != 'uint8':
    storage = decode_storage(storage.tobytes(), dtype.element)
  return rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
  """torch._utils._rebuild_parameter(_with_state): a Parameter is just its data."""
  return data


def reconstruct_persistent_obj(meta) -> PersistentObject:
  """NVIDIA's `_reconstruct_persistent_obj`, keeping the state and never the source."""
  if not isinstance(meta, dict) or not isinstance(meta.get('state'), dict):
    raise ValueError('a persistent object has no state dict')
  if meta.get('type', 'class') != 'class':
    raise ValueError(f"unsupported persistent object type {meta.get('type')!r}")
  return PersistentObject(class_name=str(meta.get('class_name')),
                          module_name=meta.get('module_name'),
                          state=dict(meta['state']), version=meta.get('version'))


def _codecs_encode(text, encoding='utf-8'):
  """Protocol 2 pickles store bytes as `_codecs.encode(text, 'latin1')`."""
  if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
    raise ValueError('_codecs.encode is allowed only to rebuild latin-1 bytes')
  return text.encode('latin1')


def _numpy_dtype(obj, align=False, copy=True):
  """numpy.dtype, always copying so a BUILD cannot modify a shared builtin dtype."""
  return np.dtype(obj, bool(align), True)


# Immutable builtin types and functions: safe to hand out as they are.
_AS_IS = {
    'collections.OrderedDict': collections.OrderedDict,
    'torch.Size': tuple,
    'argparse.Namespace': types.SimpleNamespace,
    'dnnlib.util.EasyDict': dict,
    'dnnlib.EasyDict': dict,
    'builtins.set': set,
    'builtins.frozenset': frozenset,
    'builtins.bytearray': bytearray,
    'builtins.complex': complex,
    'numpy.ndarray': np.ndarray,
    'numpy._core.multiarray._reconstruct': _multiarray._reconstruct,
    'numpy.core.multiarray._reconstruct': _multiarray._reconstruct,
    'numpy._core.multiarray.scalar': _multiarray.scalar,
    'numpy.core.multiarray.scalar': _multiarray.scalar,
}

# Local functions, wrapped afresh for every use (see `_fresh`).
_FUNCTIONS = {
    'torch._utils._rebuild_tensor': rebuild_tensor,
    'torch._utils._rebuild_tensor_v2': _rebuild_tensor_v2,
    'torch._utils._rebuild_tensor_v3': _rebuild_tensor_v3,
    'torch._utils._rebuild_parameter': _rebuild_parameter,
    'torch._utils._rebuild_parameter_with_state': _rebuild_parameter,
    'torch_utils.persistence._reconstruct_persistent_obj': reconstruct_persistent_obj,
    'numpy.dtype': _numpy_dtype,
    '_codecs.encode': _codecs_encode,
}


def allowed_globals() -> Tuple[str, ...]:
  """Every 'module.name' global the unpickler resolves; all others are refused."""
  torch_types = [f'torch.{n}' for n in (*_STORAGE_ELEMENTS, *_ELEMENTS, *_DTYPE_ALIASES)]
  return tuple(sorted({*_AS_IS, *_FUNCTIONS, 'torch.storage._load_from_bytes', *torch_types}))


def _fresh(fn: Callable) -> Callable:
  """A new wrapper per global, so a pickle's BUILD cannot alter shared functions."""
  def call(*args, **kwargs):
    return fn(*args, **kwargs)
  return call


def _torch_type(name: str) -> Optional[TorchType]:
  """The stand-in for a torch storage class or dtype global, or None."""
  element = _STORAGE_ELEMENTS.get(name) or _DTYPE_ALIASES.get(name) or name
  return TorchType(name, _ELEMENTS[element]) if element in _ELEMENTS else None


class SafeUnpickler(pickle.Unpickler):
  """Unpickles tensors and plain containers only; refuses every other global.

  Args:
    file: a binary file positioned at the pickle.
    label: how messages name the file (usually its path).
    storage_loader: maps a persistent id to a flat storage array; None for
      plain pickles, which carry no external storages.
  """

  def __init__(self, file, label: str, storage_loader: Optional[Callable] = None):
    super().__init__(file, encoding='utf-8')  # torch.load's default for Python 2 str
    self.label = label
    self._storage_loader = storage_loader

  def find_class(self, module: str, name: str):
    module = _PY2_MODULES.get(module, module)
    qualified = f'{module}.{name}'
    if qualified in _AS_IS:
      return _AS_IS[qualified]
    if qualified in _FUNCTIONS:
      return _fresh(_FUNCTIONS[qualified])
    if qualified == 'torch.storage._load_from_bytes':
      return _fresh(self._load_from_bytes)
    torch_type = _torch_type(name) if module == 'torch' else None
    if torch_type is not None:
      return torch_type
    raise UnsafePickleError(
        f"refusing to load global '{qualified[:200]}' from {self.label}: only tensors and "
        'plain containers are allowed; fsig-jax never executes code from checkpoints '
        '(if you trust the file, re-save just its tensors, e.g. model.state_dict(), '
        'with torch.save)')

  def persistent_load(self, pid):
    if self._storage_loader is None:
      raise ValueError(f'unexpected persistent id {pid!r:.100}: a plain pickle has no '
                       'external storages')
    return self._storage_loader(pid)

  def _load_from_bytes(self, data):
    """torch.storage._load_from_bytes: a nested torch.save of one storage. Only
    the torch-file reader knows that format: `torch_file` overrides this."""
    raise ValueError(f'{self.label} holds a nested torch.save storage: read the file with '
                     'fsig_jax.convert.torch_file, not a bare SafeUnpickler')
