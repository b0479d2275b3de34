"""fsig_jax.utils.xla_cpu: importing fsig_jax turns XLA:CPU's YNNPACK fusions off."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, one_line_error
from fsig_jax.utils import xla_cpu

# Compiles a convolution followed by a matrix product (what YNNPACK fuses by
# default) in a fresh process and prints its count of YNN fusions.
_PROBE = """
import fsig_jax
import jax, jax.numpy as jnp
def f(x, w):
  y = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return jnp.sum(y @ jnp.ones((8, 8)))
text = jax.jit(f).lower(jnp.ones((1, 8, 8, 8)), jnp.ones((3, 3, 8, 8))).compile().as_text()
print('YNN', text.count('ynn_fusion'))
"""


def _probe(**env_changes) -> int:
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', xla_cpu.OPT_OUT)}
  env.update(env_changes, PYTHONPATH=str(ROOT), JAX_PLATFORMS='cpu')
  env.pop('JAX_COMPILATION_CACHE_DIR', None)  # compile here, not from the tests' cache
  out = subprocess.run([sys.executable, '-c', _PROBE], env=env, capture_output=True, text=True,
                       timeout=300, check=True).stdout
  return int(out.split('YNN')[-1].split()[0])


def test_apply_defaults_adds_the_option_once_and_keeps_other_flags():
  env = {'XLA_FLAGS': '--xla_force_host_platform_device_count=8'}
  assert xla_cpu.apply_defaults(env)
  assert env['XLA_FLAGS'] == ('--xla_force_host_platform_device_count=8 '
                              '--xla_cpu_experimental_ynn_fusion_type=')
  assert not xla_cpu.apply_defaults(env)  # already there
  assert env['XLA_FLAGS'].count('ynn') == 1
  empty = {}
  assert xla_cpu.apply_defaults(empty) and empty['XLA_FLAGS'] == (
      '--xla_cpu_experimental_ynn_fusion_type=')


def test_the_users_choice_and_the_opt_out_win():
  mine = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=dot'}
  assert not xla_cpu.apply_defaults(mine)
  assert mine['XLA_FLAGS'] == '--xla_cpu_experimental_ynn_fusion_type=dot'
  for off in ('0', 'false', 'off'):
    env = {xla_cpu.OPT_OUT: off}
    assert not xla_cpu.apply_defaults(env) and 'XLA_FLAGS' not in env


def test_importing_fsig_jax_compiles_without_ynn_fusions():
  # XLA's default (opted out) fuses the probe's conv and product into YNNPACK;
  # if a jaxlib stops doing so, this option has lost its reason: revisit it.
  assert _probe(**{xla_cpu.OPT_OUT: '0'}) > 0
  assert _probe() == 0
  assert _probe(XLA_FLAGS='--xla_force_host_platform_device_count=2') == 0


def test_the_benchmark_refuses_an_unknown_program_in_one_line():
  r = subprocess.run([sys.executable, 'benchmarks/xla_cpu_options.py', '--programs=vgg46'],
                     cwd=ROOT, capture_output=True, text=True, timeout=300)
  one_line_error(r, 'vgg46', 'vgg64')


@pytest.mark.slow
def test_the_benchmark_compiles_each_program_both_ways_and_times_them(tmp_path):
  out = tmp_path / 'rows.json'
  r = subprocess.run([sys.executable, 'benchmarks/xla_cpu_options.py', '--programs=vgg64',
                      '--calls=1', f'--out={out}'], cwd=ROOT, capture_output=True, text=True,
                     timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  xla, fsig = json.loads(out.read_text())
  assert (xla['setting'], fsig['setting']) == ('xla', 'fsig')
  # 'xla' really is XLA's default (the script opts out of fsig_jax's) and 'fsig' has no YNN.
  assert xla['ynn_fusion_mentions'] > 0 and fsig['ynn_fusion_mentions'] == 0
  assert xla['calls'] == fsig['calls'] == 1 and fsig['median_call_s'] > 0
  assert set(fsig['ratio_to_xla']) >= {'median_call_s', 'mean_call_s'}
