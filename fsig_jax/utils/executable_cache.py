"""Compiled steps kept on disk under a key of what they are made of, so that a
second run of the same config loads its step without tracing it.

JAX's persistent compilation cache (`utils.cli.compile_cache`) keys a program by
its lowered StableHLO, so a warm start still traces the step to a jaxpr and
lowers it (3.6-5.3 s of the 64 px quickstart's 9.3-12.3 s before its first step
on the 2-core CPU; `benchmarks/results/start_time_cpu.md`) only to find the
compiled program it already has. `CachedJit(jitted, name, description)` keys the
*compiled executable* instead by everything the program is a function of, and a
hit deserialises it (`jax.experimental.serialize_executable`) without tracing
(the quickstart's second run then steps 7.4-8.3 s after launch, against
12.6-18.6 s with XLA's cache only, measured one after the other):

  * the code: the content of every .py file of the fsig_jax package and of the
    module file of any function the caller names from outside it (for the
    adaptation step, the methods' hooks: a plug-in method's file);
  * the caller's `description` of what it closes over: for the adaptation step,
    the architecture, the hyper-parameters, the method names and their kwargs,
    the mesh and donation (`engine.step.make_train_step`'s arguments, which is
    all its program is built from; see below);
  * the arguments' tree structure, shapes, dtypes, weak types and shardings;
  * the jax, jaxlib, flax, optax and numpy versions, Python's, the backend's
    platform and version, the devices' kinds and ids, the JAX_*, XLA_* and
    FSIG_* environment variables (FSIG_CONV_IMPL picks the convolution, XLA_FLAGS
    the compiler's options) and every jax config value that is not about
    caching, logging or dumps.

A miss lowers and compiles as `jax.jit` would (XLA's persistent cache still
applies) and, when XLA compiled the program, writes the executable atomically.
When the program came from XLA's cache instead (the code changed but not the
program, e.g. after an edit elsewhere), or from jax's memory (compiled before
in this process, perhaps from XLA's cache), it is used but not kept: with jaxlib
0.10.2 on CPU, an executable loaded from XLA's cache serialises without its
compiled kernels (the copy fails at its first call: `NOT_FOUND: Function
broadcast_add_fusion.311 not found`), so such a run starts as before this
cache, as do its reruns while XLA's cache holds the program; a program XLA
compiles is kept. Which it was is read from jax's monitoring events (a backend
compilation without a persistent-cache hit, in the compiling thread). Entries live in
`<XLA cache folder>/executables/`; the newest `MAX_ENTRIES` are kept.

What the key trusts: that the program is a pure function of the code, the
description and the arguments' types, i.e. that no method bakes a value read
from data (a file, the target images, the source weights) into the step as a
constant instead of carrying it in the state. Every method in this library
keeps such values in `state['method']`; tests/test_executable_cache.py lowers
each registered method's step for two different source models and target sets
and checks that the programs are identical, so a method that breaks the rule
fails there. A plug-in method that reads files into its closure should not run
with this cache (`FSIG_EXECUTABLE_CACHE=off`).

Off: `FSIG_EXECUTABLE_CACHE=off` (or another off word of utils/switches.py),
or whenever XLA's persistent cache is off (`FSIG_CACHE_DIR=off`), and in
multi-process runs (whose executables are tied to a cluster's device
assignment; they use XLA's cache as before).
A data-parallel run on one host's devices is cached (checked on 2 CPU devices:
the loaded step ends bit-identical to the compiled one). Users: the adaptation
step (`engine.loop.train`) and the student trainers' steps (GPD, KDIT,
KDIT-SPADE, StarGAN v2, through `engine.parallel.jit_step`); ProGAN's
progressive step still traces on every start. A trainer's description is its
whole run config plus the student's and teacher's architectures: its
`make_step` takes nothing else (no arrays: the teachers, the VGG trunk and the
batches are arguments), so the program is a function of them; the whole config
rather than the fields the step reads, so that a field a future step starts to
read cannot be missed (the cost: a run resumed with another step count
compiles its step once more). Their steps trace in 1-3 s, so they gain
0.8-2.8 s a start (benchmarks/results/start_time_cpu.md, 2026-12-02).
A damaged or unloadable entry is logged, removed and compiled anew; a cache
folder that cannot be written only loses the speed-up. Entries are pickles
(zlib level 1) holding XLA executables: like XLA's own cache, load only a
folder you wrote yourself.
"""
import functools
import hashlib
import json
import logging
import os
import pickle
import platform
import sys
import threading
import time
import zlib
from typing import Any, Callable, Optional

import jax
from jax import monitoring
import numpy as np

from fsig_jax.errors import WriteError
from fsig_jax.utils import memory, switches
from fsig_jax.utils.files import write_atomic

log = logging.getLogger('fsig_jax')

ENV = 'FSIG_EXECUTABLE_CACHE'
MAX_ENTRIES = 32
FORMAT = 'fsig-jax executable 1'
SUFFIX = '.jaxexe'
_XLA_CACHE_HIT = '/jax/compilation_cache/cache_hits'  # jax/_src/compiler.py
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Environment variables that name places or test hooks, not programs.
_ENV_IGNORED = ('FSIG_SHARED', 'FSIG_CACHE_DIR', ENV, 'JAX_COMPILATION_CACHE_DIR')
# jax config values (and JAX_* variables) that do not change a compiled program.
_CONFIG_IGNORED = ('cache', 'log', 'dump', 'pprint', 'traceback', 'explain', 'source_url')


def folder() -> str:
  """The entries' folder, or '' when this cache is off (see the module doc)."""
  if switches.is_off(os.environ.get(ENV)):
    return ''
  xla = jax.config.jax_compilation_cache_dir
  if not xla or jax.process_count() > 1:
    return ''
  return os.path.join(xla, 'executables')


def _files_digest(paths) -> str:
  h = hashlib.sha256()
  for path in sorted(set(paths)):
    h.update(os.path.relpath(path, _PACKAGE).encode() + b'\0')
    with open(path, 'rb') as f:
      h.update(f.read())
  return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _package_digest() -> str:
  paths = [os.path.join(d, n) for d, _, names in os.walk(_PACKAGE) for n in names
           if n.endswith('.py')]
  return _files_digest(paths)


def outside_files(functions) -> list:
  """The module files of `functions` (e.g. a method's hooks) that lie outside the
  fsig_jax package: plug-in code the key must cover besides the package's own."""
  files = set()
  for fn in functions:
    module = sys.modules.get(getattr(fn, '__module__', None) or '')
    path = getattr(module, '__file__', None)
    if path and not os.path.abspath(path).startswith(_PACKAGE + os.sep):
      files.add(os.path.abspath(path))
  return sorted(files)


def code_digest(extra_files=()) -> str:
  """SHA-256 of fsig_jax's .py files, then of `extra_files` (`outside_files`)."""
  return _package_digest() + (_files_digest(extra_files) if extra_files else '')


def _versions() -> dict:
  out = {'python': platform.python_version()}
  for name in ('jax', 'jaxlib', 'flax', 'optax', 'numpy'):
    module = sys.modules.get(name)
    out[name] = getattr(module, '__version__', None) if module else None
  return out


def environment() -> dict:
  """What besides the code and the arguments decides a compiled program here."""
  devices = jax.devices()
  return {
      'versions': _versions(),
      'backend': [devices[0].platform, devices[0].client.platform_version],
      'devices': [[d.id, d.device_kind] for d in devices],
      'processes': jax.process_count(),
      'env': {k: v for k, v in sorted(os.environ.items())
              if k.startswith(('JAX_', 'XLA_', 'FSIG_')) and k not in _ENV_IGNORED
              and not k.startswith('FSIG_TEST_')
              and not any(word in k.lower() for word in _CONFIG_IGNORED)},
      'jax_config': {k: repr(v) for k, v in sorted(jax.config.values.items())
                     if not any(word in k for word in _CONFIG_IGNORED)},
  }


def mesh_description(mesh) -> Optional[list]:
  """A mesh as a key sees it: axis names, shape and device ids (None: no mesh)."""
  if mesh is None:
    return None
  return [list(mesh.axis_names), list(mesh.devices.shape), [d.id for d in mesh.devices.flat]]


def signature(args) -> str:
  """The arguments' tree structure and every leaf's shape, dtype, weak type and sharding."""
  leaves, treedef = jax.tree.flatten(args)
  parts = [str(treedef)]
  for x in leaves:
    parts.append(f'{getattr(x, "shape", ())}|{getattr(x, "dtype", type(x).__name__)}|'
                 f'{getattr(x, "weak_type", "")}|{getattr(x, "sharding", "")}')
  return '\n'.join(parts)


def _jsonable(x):
  """json's fallback: arrays by shape, dtype and content digest (a repr elides
  the middle of a large array), anything else by repr."""
  if hasattr(x, 'shape') and hasattr(x, 'dtype'):
    a = np.ascontiguousarray(x)
    return f'array{a.shape}{a.dtype.str}:{hashlib.sha256(a.tobytes()).hexdigest()[:16]}'
  return repr(x)


def key(name: str, description: Any, args, code_files=()) -> str:
  """The entry's key: a digest of the code, the description, the arguments and the
  environment (module doc)."""
  text = json.dumps({'format': FORMAT, 'name': name, 'code': code_digest(code_files),
                     'description': description, 'args': signature(args),
                     'environment': environment()}, sort_keys=True, default=_jsonable)
  return hashlib.sha256(text.encode()).hexdigest()[:32]


def _load(path: str):
  from jax.experimental import serialize_executable  # pylint: disable=g-import-not-at-top
  with open(path, 'rb') as f:
    entry = pickle.loads(zlib.decompress(f.read()))
  if not (isinstance(entry, tuple) and len(entry) == 4 and entry[0] == FORMAT):
    raise ValueError('not an entry of this format')
  _, payload, in_tree, out_tree = entry
  return serialize_executable.deserialize_and_load(payload, in_tree, out_tree)


def _store(path: str, compiled) -> bool:
  from jax.experimental import serialize_executable  # pylint: disable=g-import-not-at-top
  try:
    payload, in_tree, out_tree = serialize_executable.serialize(compiled)
  except (ValueError, NotImplementedError) as e:  # e.g. constants JAX cannot serialise
    log.info('%s: not kept (%s)', os.path.basename(path), e)
    return False

  def write(tmp):
    with open(tmp, 'wb') as f:  # zlib level 1: the 64 px step's 24 MB -> 4.5 MB, 0.07 s to undo
      f.write(zlib.compress(pickle.dumps((FORMAT, payload, in_tree, out_tree),
                                         protocol=pickle.HIGHEST_PROTOCOL), 1))
  try:
    write_atomic(path, write, suffix=f'.{os.getpid()}.tmp')
  except WriteError as e:
    log.warning('could not keep the compiled program (%s); the next run compiles it again', e)
    return False
  _prune(os.path.dirname(path))
  return True


def _prune(where: str):
  try:
    entries = sorted((os.path.join(where, n) for n in os.listdir(where) if n.endswith(SUFFIX)),
                     key=os.path.getmtime, reverse=True)
    for path in entries[MAX_ENTRIES:]:
      os.remove(path)
  except OSError:
    pass


def compile_or_load(jitted, name: str, description: Any, args, code_files=()):
  """The compiled program of `jitted` for `args`: loaded from the cache when its key
  is there, else lowered, compiled and kept. Returns (compiled, how) with how one of
  'loaded', 'compiled' (and kept), 'uncached' (cache off)."""
  where = folder()
  if not where:
    return jitted.lower(*args).compile(), 'uncached'
  t0 = time.perf_counter()
  path = os.path.join(where, f'{name}-{key(name, description, args, code_files)}{SUFFIX}')
  if os.path.exists(path):
    try:
      compiled = _load(path)
      os.utime(path)  # newest first when pruning
      log.info('%s: loaded the compiled program from %s in %.1f s (no tracing)',
               name, path, time.perf_counter() - t0)
      return compiled, 'loaded'
    except Exception as e:  # pylint: disable=broad-except
      log.warning('%s: could not load %s (%s: %s); removed, compiling anew',
                  name, path, type(e).__name__, e)
      try:
        os.remove(path)
      except OSError:
        pass
  compiled, fresh = _compile(jitted.lower(*args))
  if not fresh:  # see the module doc: such a program does not serialise whole
    log.info('%s: from XLA\'s cache or jax\'s memory in %.1f s; not kept (only programs '
             'XLA compiles are)', name, time.perf_counter() - t0)
    return compiled, 'uncached'
  kept = _store(path, compiled)
  log.info('%s: compiled in %.1f s%s', name, time.perf_counter() - t0,
           f'; kept in {path}' if kept else '')
  return compiled, 'compiled' if kept else 'uncached'


def _compile(lowered):
  """(lowered.compile(), whether XLA compiled it just now): jax's monitoring events,
  recorded in the compiling thread, must show a backend compilation and no hit in
  XLA's persistent cache (a program jax already holds in memory shows neither)."""
  thread, seen = threading.get_ident(), set()

  def on_event(event, **_):
    if threading.get_ident() == thread:
      seen.add(event)

  def on_duration(event, duration, **_):
    del duration
    on_event(event)
  monitoring.register_event_listener(on_event)
  monitoring.register_event_duration_secs_listener(on_duration)
  try:
    compiled = lowered.compile()
  finally:
    monitoring.unregister_event_listener(on_event)
    monitoring.unregister_event_duration_listener(on_duration)
  return compiled, memory.COMPILE_EVENT in seen and _XLA_CACHE_HIT not in seen


class CachedJit:
  """A jitted function whose compiled programs come from `compile_or_load`, one per
  argument signature. Called like the function with positional arguments;
  `lower(*args)` lowers as the jitted function does. `how` records how each
  program was obtained ('loaded', 'compiled', 'uncached'), for tests and logs."""

  def __init__(self, jitted: Callable, name: str, description: Any, code_files=()):
    self._jitted = jitted
    self._code_files = tuple(code_files)
    self._name = name
    self._description = description
    self._programs = {}
    self._last: Optional[Callable] = None
    self.how = []

  def lower(self, *args):
    return self._jitted.lower(*args)

  def __call__(self, *args):
    if self._last is not None:
      try:
        return self._last(*args)
      except TypeError:
        pass  # other argument types or structure (checked before anything runs)
    sig = signature(args)
    if sig not in self._programs:
      compiled, how = compile_or_load(self._jitted, self._name, self._description, args,
                                      self._code_files)
      self._programs[sig] = compiled
      self.how.append(how)
    self._last = self._programs[sig]
    return self._last(*args)
