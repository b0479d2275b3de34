"""Off switches read from environment variables: one set of words for all.

fsig-jax's variables that turn something off (`FSIG_CACHE_DIR`,
`FSIG_EXECUTABLE_CACHE`, `FSIG_XLA_CPU_DEFAULTS`) all accept the same words,
case and surrounding spaces ignored: 0, false, no, off, none. No imports, so
`fsig_jax/utils/xla_cpu.py` can use it before JAX starts.
"""
from typing import Optional

OFF_WORDS = ('0', 'false', 'no', 'off', 'none')


def is_off(value: Optional[str]) -> bool:
  """Whether an environment variable's value says off (unset or empty: no)."""
  return (value or '').strip().lower() in OFF_WORDS
