"""The executable cache (fsig_jax/utils/executable_cache.py): a second run loads its
compiled step without tracing and runs it bit-identically; the key covers what the
program is made of and nothing else; damaged entries, programs that came from XLA's
cache and the off switch; and every registered method's step is a function of the
code, the config and the arguments' types only (the key's one assumption)."""
import importlib.util
import logging
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import compilation_cache

from engine_utils import TINY, leaves_with_paths, tiny_bundle, tiny_hparams, tiny_images
from fsig_jax.engine import parallel, phases
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import REGISTRY, get_method
from fsig_jax.utils import executable_cache as ec


def _entries(folder):
  return sorted(n for n in os.listdir(folder) if n.endswith(ec.SUFFIX)) \
      if os.path.isdir(folder) else []


def _three_steps(cache_as):
  """A new 'run' of the tiny config: its own step function, three steps from the
  same start. Returns (final state's leaves, metrics, how its program was got)."""
  hp = tiny_hparams()
  method = get_method(['tgan'])
  state = init_state(tiny_bundle(), hp, method, jax.random.PRNGKey(1))
  step = make_train_step(TINY, hp, method, cache_as=cache_as)
  images = jnp.asarray(tiny_images(hp.batch_size))
  metrics = []
  for _ in range(3):  # lazy R1 and path length both run (every 2)
    state, m = step(state, images)
    metrics.append(jax.device_get(m))
  return leaves_with_paths(jax.device_get(state)), metrics, step.programs.how


def test_a_second_run_loads_its_step_untraced_and_ends_bit_identical(exe_cache, monkeypatch):
  desc = {'names': ['tgan'], 'kwargs': {}}
  first, m1, how = _three_steps(desc)
  assert how == ['compiled'] and len(_entries(exe_cache)) == 1

  traced = []

  def on_trace(event, duration, **kw):
    if event == '/jax/core/compile/jaxpr_trace_duration':  # jax._src.dispatch
      traced.append(kw.get('fun_name'))
  monkeypatch.setattr(ec, '_compile', lambda lowered: pytest.fail('compiled again'))
  jax.monitoring.register_event_duration_secs_listener(on_trace)
  try:
    second, m2, how = _three_steps(desc)
  finally:
    jax.monitoring.unregister_event_duration_listener(on_trace)
  assert how == ['loaded'] and 'train_step' not in traced, traced
  assert m1 == m2 and first.keys() == second.keys()
  for k in first:
    np.testing.assert_array_equal(first[k], second[k], err_msg=k)


def _f(state, x):
  return {'a': state['a'] + x.sum(), 'n': state['n'] + 1}, {'m': jnp.mean(x)}


def _args(n=4):
  return {'a': jnp.zeros((3,)), 'n': jnp.zeros((), jnp.int32)}, jnp.ones((n, 2))


def test_the_key_covers_the_program_and_nothing_else(tmp_path, monkeypatch):
  desc = {'hp': {'lr': 0.002}, 'method': {'names': ['tgan'], 'kwargs': {}}}
  k = ec.key('step', desc, _args())
  assert ec.key('step', desc, _args()) == k
  changed = [
      ec.key('step', {**desc, 'hp': {'lr': 0.001}}, _args()),      # a hyper-parameter
      ec.key('step', desc, _args(n=8)),                             # a shape
      ec.key('step', desc, (_args()[0], jnp.ones((4, 2), jnp.bfloat16))),  # a dtype
      ec.key('other', desc, _args()),                               # the program's name
      ec.key('step', {**desc, 'data': np.arange(2000)}, _args()),   # an array in the kwargs
  ]
  big = np.arange(2000)
  big[1000] = -1  # elided in the array's repr: the key sees it
  changed.append(ec.key('step', {**desc, 'data': big}, _args()))
  plug_in = tmp_path / 'plug_in.py'
  plug_in.write_text('x = 1\n')
  changed.append(ec.key('step', desc, _args(), code_files=[str(plug_in)]))
  plug_in.write_text('x = 2\n')  # the plug-in's code changed
  changed.append(ec.key('step', desc, _args(), code_files=[str(plug_in)]))
  monkeypatch.setenv('FSIG_CONV_IMPL', 'im2col')  # another convolution
  changed.append(ec.key('step', desc, _args()))
  monkeypatch.setenv('XLA_FLAGS', os.environ.get('XLA_FLAGS', '') + ' --xla_cpu_use_thunk_runtime=true')
  changed.append(ec.key('step', desc, _args()))
  assert len(set(changed + [k])) == len(changed) + 1
  # Places, logs and test hooks do not change a program.
  last = changed[-1]
  monkeypatch.setenv('FSIG_SHARED', '/elsewhere')
  monkeypatch.setenv('JAX_LOG_COMPILES', '1')
  monkeypatch.setenv('FSIG_TEST_SAVE_DELAY', '1')
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', '/elsewhere/cache')
  assert ec.key('step', desc, _args()) == last
  # The package's own code is part of it (a digest of every .py file).
  assert len(ec.code_digest()) == 64 and ec.code_digest([str(plug_in)]) != ec.code_digest()


def test_a_trainer_s_step_is_cached_through_jit_step(exe_cache):
  """The student trainers' steps (engine.parallel.jit_step with cache_as): a second
  step made from the same description loads the program and gives the same
  numbers; another description or mesh is another program; without cache_as it is
  plain jax.jit."""
  desc = {'config': {'lr': 0.1}, 'student': 'tiny'}
  fn = lambda state, x: _f(state, x)  # noqa: E731  (not _f: other tests compile that)
  first = parallel.jit_step(fn, None, cache_as=('trainer_step', desc))
  out1 = jax.device_get(first(*_args()))
  second = parallel.jit_step(fn, None, cache_as=('trainer_step', desc))
  out2 = jax.device_get(second(*_args()))
  assert (first.how, second.how, len(_entries(exe_cache))) == (['compiled'], ['loaded'], 1)
  assert jax.tree.all(jax.tree.map(np.array_equal, out1, out2))
  # (a new function object: the same one would come from jax's memory, not kept)
  other = parallel.jit_step(lambda state, x: _f(state, x), None,
                            cache_as=('trainer_step', {**desc, 'config': {'lr': 1}}))
  other(*_args())
  mesh = parallel.make_mesh(jax.devices()[:1])
  on_mesh = parallel.jit_step(fn, mesh, cache_as=('trainer_step', desc))
  on_mesh(*parallel.replicate(_args(), mesh))
  assert (other.how, on_mesh.how, len(_entries(exe_cache))) == (['compiled'], ['compiled'], 3)
  assert ec.mesh_description(mesh) == [['data'], [1], [jax.devices()[0].id]]
  assert ec.mesh_description(None) is None
  assert not isinstance(parallel.jit_step(fn, None), ec.CachedJit)


def test_outside_files_are_only_plug_ins(tmp_path):
  plug_in = tmp_path / 'my_method.py'
  plug_in.write_text('def g_terms(ctx, mstate):\n  return {}\n')
  spec = importlib.util.spec_from_file_location('my_method', plug_in)
  module = importlib.util.module_from_spec(spec)
  sys.modules['my_method'] = module
  try:
    spec.loader.exec_module(module)
    hooks = [f for m in get_method(['tgan', 'cdc']).methods for f in vars(m).values()
             if callable(f)]
    assert ec.outside_files(hooks) == []  # the library's own methods: the package digest
    assert ec.outside_files(hooks + [module.g_terms]) == [str(plug_in)]
  finally:
    del sys.modules['my_method']


def test_damaged_entries_are_replaced_and_cached_programs_run(exe_cache, caplog):
  jitted = jax.jit(_f, donate_argnums=0)
  compiled, how = ec.compile_or_load(jitted, 'f', {}, _args())
  assert how == 'compiled' and len(_entries(exe_cache)) == 1
  path = os.path.join(exe_cache, _entries(exe_cache)[0])
  loaded, how = ec.compile_or_load(jitted, 'f', {}, _args())
  assert how == 'loaded'
  state, metrics = loaded(*_args())
  np.testing.assert_array_equal(state['a'], [8.0, 8.0, 8.0])  # sum of a 4x2 of ones
  assert int(state['n']) == 1 and float(metrics['m']) == 1.0
  donated = _args()
  loaded(*donated)
  assert donated[0]['a'].is_deleted()  # the loaded program still donates its state
  for damage in (b'not an entry', open(path, 'rb').read()[:1000]):
    with open(path, 'wb') as f:
      f.write(damage)
    jax.clear_caches()  # as in a new process
    with caplog.at_level(logging.WARNING, logger='fsig_jax'):
      _, how = ec.compile_or_load(jitted, 'f', {}, _args())
    assert how == 'compiled' and 'could not load' in caplog.text and 'removed' in caplog.text
    caplog.clear()
    assert ec.compile_or_load(jitted, 'f', {}, _args())[1] == 'loaded'


def test_a_program_from_xla_s_cache_is_used_not_kept(exe_cache, tmp_path, caplog):
  """jaxlib 0.10.2 on CPU serialises an executable it loaded from XLA's cache
  without its kernels, so such a program is used for the run and not kept."""
  before = (jax.config.jax_compilation_cache_dir,
            jax.config.jax_persistent_cache_min_compile_time_secs)
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', str(tmp_path / 'xla'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  try:
    compilation_cache.reset_cache()
    jitted = jax.jit(lambda s, x: _f(s, x * 3.0))
    jitted.lower(*_args()).compile()  # XLA compiles it and keeps it
    jax.clear_caches()  # as in a new process: the next compile reads XLA's cache
    with caplog.at_level(logging.INFO, logger='fsig_jax'):
      compiled, how = ec.compile_or_load(jitted, 'g', {}, _args())
    assert how == 'uncached' and _entries(exe_cache) == [] and "not kept" in caplog.text
    np.testing.assert_array_equal(compiled(*_args())[0]['a'], [24.0] * 3)
    # The same program again in this process comes from jax's memory: not kept either.
    assert ec.compile_or_load(jitted, 'g', {}, _args())[1] == 'uncached'
    other = jax.jit(lambda s, x: _f(s, x * 5.0))  # a new program: XLA compiles it and it is kept
    assert ec.compile_or_load(other, 'h', {}, _args())[1] == 'compiled'
    assert ec.compile_or_load(other, 'h', {}, _args())[1] == 'loaded'
  finally:
    jax.config.update('jax_compilation_cache_dir', before[0])
    jax.config.update('jax_persistent_cache_min_compile_time_secs', before[1])
    compilation_cache.reset_cache()


def test_off_switch(monkeypatch):
  monkeypatch.setenv(ec.ENV, 'off')
  assert ec.folder() == ''
  monkeypatch.setenv(ec.ENV, 'on')
  assert ec.folder() == os.path.join(jax.config.jax_compilation_cache_dir, 'executables')
  monkeypatch.setenv(ec.ENV, '0')
  compiled, how = ec.compile_or_load(jax.jit(_f), 'f', {}, _args())
  assert how == 'uncached' and int(compiled(*_args())[0]['n']) == 1


# The key's assumption: a method's step is a function of the code, the config and the
# arguments' types, never of the values it was initialised from (source weights, target
# images). Lowered for two different source models and target sets, each registered
# method's step must be the same program. adam's probing run and kd_fsig's source stream
# make theirs slow to build; with rick (whose init prunes and estimates), the default
# tier checks one method; every other one runs in the slow tier (6-15 s each).
_DEFAULT = {'rick'}
_KWARGS = {'adam': {'probe_steps': 2, 'num_batch_fisher': 1},
           'kd_fsig': {'feat_const_batch': 2, 'queue_size': 4, 'n_train': 4, 'sdd_weight': 0.0},
           'ewc': {'n_samples': 8}}


def _lowered_text(name, seed):
  hp = tiny_hparams(batch_size=2)
  method = get_method(name, **{name: _KWARGS.get(name, {})})
  images = tiny_images(8, seed=3 + seed)
  state = init_state(tiny_bundle(seed), hp, method, jax.random.PRNGKey(seed), images=images,
                     run_phase=phases.runner())
  step = make_train_step(TINY, hp, method, donate=False)
  return step.lower(state, jnp.asarray(images[:2])).as_text()


@pytest.mark.parametrize('name', [n if n in _DEFAULT else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(REGISTRY)])
def test_each_method_s_step_does_not_depend_on_the_values_it_starts_from(name):
  a, b = _lowered_text(name, 0), _lowered_text(name, 1)
  assert a == b, f'{name}: the step program depends on the source weights or target images'
