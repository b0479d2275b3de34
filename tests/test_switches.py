"""One set of off words for every environment switch (fsig_jax/utils/switches.py)."""
import jax
import pytest

from fsig_jax.utils import cli, switches, xla_cpu
from fsig_jax.utils import executable_cache as ec


@pytest.mark.parametrize('value', ['0', 'false', 'no', 'off', 'none', 'OFF', ' Off ', 'False'])
def test_every_switch_reads_every_off_word(value, monkeypatch):
  assert switches.is_off(value)
  env = {xla_cpu.OPT_OUT: value}
  assert not xla_cpu.apply_defaults(env) and 'XLA_FLAGS' not in env
  monkeypatch.setenv(ec.ENV, value)
  assert ec.folder() == ''
  # compile_cache honours JAX_COMPILATION_CACHE_DIR first (the tests set it): unset it here.
  before = jax.config.jax_compilation_cache_dir
  try:
    jax.config.update('jax_compilation_cache_dir', None)
    monkeypatch.setenv('FSIG_CACHE_DIR', value)
    assert cli.compile_cache() == ''
    assert jax.config.jax_compilation_cache_dir is None
  finally:
    jax.config.update('jax_compilation_cache_dir', before)


@pytest.mark.parametrize('value', [None, '', '1', 'on', 'yes', 'true', 'offline'])
def test_other_values_are_not_off(value, monkeypatch):
  assert not switches.is_off(value)
  env = {} if value is None else {xla_cpu.OPT_OUT: value}
  assert xla_cpu.apply_defaults(env)
  if value is None:
    monkeypatch.delenv(ec.ENV, raising=False)
  else:
    monkeypatch.setenv(ec.ENV, value)
  assert ec.folder().endswith('executables')
