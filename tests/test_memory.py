"""fsig_jax.utils.memory: the compiler's freed memory goes back to the OS after each compile."""
import jax
import jax.numpy as jnp
import numpy as np

from fsig_jax import run as run_lib
from fsig_jax.engine import run_config
from fsig_jax.utils import memory
from jax._src import monitoring as _monitoring


def _ours():
  return [f for f in _monitoring.get_event_duration_listeners() if f is memory._after_compile]  # pylint: disable=protected-access


def test_trim_runs_after_every_compilation_once_registered(monkeypatch):
  calls = []
  monkeypatch.setattr(memory, '_malloc_trim', lambda: calls.append)
  memory.trim_after_compiles()
  memory.trim_after_compiles()
  assert len(_ours()) == 1  # idempotent
  salt = float(np.random.default_rng().integers(1 << 20))  # a program no cache holds
  before = len(calls)
  jax.jit(lambda x: jnp.sin(x) * salt + 1.0)(jnp.ones(3)).block_until_ready()
  # jax's compile event still has the name we listen for, and we trimmed after it.
  assert len(calls) > before and calls[-1] == 0


def test_every_run_turns_it_on(monkeypatch):
  monkeypatch.setattr(_monitoring, '_event_duration_secs_listeners', [])
  assert not _ours()
  run_lib.Run(run_config.default_config(), None)
  assert len(_ours()) == 1


def test_trim_heap_is_harmless_where_unsupported(monkeypatch):
  monkeypatch.setattr(memory, '_malloc_trim', lambda: None)
  assert memory.trim_heap() is False
