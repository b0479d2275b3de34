"""Host memory: hand back to the OS what XLA's compiler freed, before the program runs.

Compiling a training step on a CPU leaves about a gigabyte of freed compiler
memory (LLVM's working set) in glibc's heap arenas: freed, but still resident,
so it adds to the process's peak memory when the step's own buffers are
allocated next (the 256 px adaptation step: peak RSS 9.34 GiB without, 8.31
GiB with the trim; `benchmarks/compare_torch.py`). `trim_after_compiles`
registers a jax monitoring listener that calls glibc's `malloc_trim(0)` after
each backend compilation (or compilation-cache load), i.e. before the compiled
program first runs. The run machinery turns it on for every trainer
(`fsig_jax.run.Run`). Where the C library has no `malloc_trim` (macOS, musl)
it does nothing.
"""
import ctypes
import functools
from typing import Callable, Optional

# jax's event around each backend compilation or persistent-cache load (jax._src.dispatch)
COMPILE_EVENT = '/jax/core/compile/backend_compile_duration'


@functools.lru_cache(maxsize=None)
def _malloc_trim() -> Optional[Callable[[int], int]]:
  try:
    return ctypes.CDLL(None).malloc_trim
  except (OSError, AttributeError):
    return None


def trim_heap() -> bool:
  """Returns freed heap memory to the OS now; False where the C library cannot."""
  trim = _malloc_trim()
  if trim is None:
    return False
  trim(0)
  return True


def _after_compile(event: str, duration: float, **kwargs):
  del duration, kwargs
  if event == COMPILE_EVENT:
    trim_heap()


def trim_after_compiles():
  """Trims the heap after every XLA compilation from now on (idempotent)."""
  from jax import monitoring  # pylint: disable=g-import-not-at-top
  from jax._src import monitoring as _monitoring  # pylint: disable=g-import-not-at-top
  if _after_compile not in _monitoring.get_event_duration_listeners():
    monitoring.register_event_duration_secs_listener(_after_compile)
