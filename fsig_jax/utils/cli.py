"""Shared command-line handling: config files, and errors as one clear line (exit code 2).

`config_flags_parser` is an absl `flags_parser` that reads `--config=FILE[:ARG]`
itself (`load_config_file`) instead of through ml_collections'
`DEFINE_config_file`, whose parser re-raises a config file's error as text with
the traceback pasted in (config_flags.py `ConfigFileFlagParser.parse`). Reading
it here keeps the original exception, so the user gets the file, the line in it
and the error, and a mistyped `--config.FIELD` override gets the closest field.
The loaded config then becomes an ml_collections `DEFINE_config_dict` flag, so
`--config.a.b=value` overrides are parsed as before.
"""
import difflib
import importlib.util
import os
import re
import sys
import traceback

from fsig_jax.errors import ConfigError, FsigError
from fsig_jax.utils import switches


def benchmark_setup(out: str, *subdirs: str) -> str:
  """A benchmark script's start: quiet logs, the output folder (and `subdirs`), and
  XLA's persistent compile cache under OUT/xla_cache unless one is set, so that
  seeds, rows and reruns reuse compiled steps. Returns `out`."""
  from fsig_jax.utils.logs import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs()
  for sub in ('',) + subdirs:
    os.makedirs(os.path.join(out, sub), exist_ok=True)
  compile_cache(os.path.join(out, 'xla_cache'))
  return out


# Programs that take at least this long to compile are kept in the persistent cache
# (the step, the jitted initialisers, sampling and evaluation); smaller ones
# compile about as fast as an entry loads.
MIN_COMPILE_SECONDS = 0.25


def compile_cache(default: str = '') -> str:
  """Turns on XLA's persistent compilation cache, so a second run of the same
  program on this machine skips compiling (the launchers call it first).

  The folder: JAX_COMPILATION_CACHE_DIR when set (jax reads it), else `default`,
  else $FSIG_CACHE_DIR or $XDG_CACHE_HOME/fsig_jax/xla (~/.cache/fsig_jax/xla);
  FSIG_CACHE_DIR=off (or another off word of utils/switches.py) turns it off.
  Safe across versions and machines: jax keys each entry by the program, the
  jax/jaxlib version, the XLA flags and the device kind. Returns the folder
  ('' when off); an unwritable one is skipped.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  env = os.environ.get('FSIG_CACHE_DIR', '')
  if switches.is_off(env):
    return ''
  folder = default or env or os.path.join(
      os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'),
      'fsig_jax', 'xla')
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError:
    return ''
  jax.config.update('jax_compilation_cache_dir', folder)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', MIN_COMPILE_SECONDS)
  return folder


def fail(message: str, code: int = 2):
  """Prints `fsig-jax: error: message` to stderr and exits."""
  print(f'fsig-jax: error: {message}', file=sys.stderr, flush=True)
  raise SystemExit(code)


def run_main(main, **kwargs):
  """`absl.app.run(main, **kwargs)` for a launcher: a user error (FsigError, e.g. a
  WriteError from an output that cannot be written) escaping `main` exits through
  `fail` as one line instead of a traceback. Every launcher starts this way, after
  its imports, which are frozen out of the garbage collector's way
  (`utils.gc_tuning`: 1.8 s less in the collector before a quickstart's first step)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from fsig_jax.utils.gc_tuning import freeze_imports  # pylint: disable=g-import-not-at-top
  freeze_imports()

  def guarded(argv):
    try:
      return main(argv)
    except FsigError as e:
      fail(str(e))
  app.run(guarded, **kwargs)


MAX_SEEDS = 1_000_000


def parse_seeds(spec: str, flag: str = '--seeds') -> list:
  """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]: comma-separated integers and inclusive
  ranges A-B (stylegan2-ada-pytorch's `num_range` takes one range or one list;
  this takes both mixed). Raises ConfigError naming `flag` for anything else.
  Seeds are numpy RandomState seeds, so they lie in [0, 2**32 - 1]."""
  seeds = []
  for part in str(spec).replace(' ', '').split(','):
    m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
    if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
      raise ConfigError(f'{flag}={spec}: {part!r} is not a seed or a range; pass non-negative '
                        f'integers and ranges A-B with A <= B, e.g. {flag}=0-63 or {flag}=0,5,10-12')
    lo = int(m.group(1))
    hi = int(m.group(2) or lo)
    if hi >= 2 ** 32:
      raise ConfigError(f'{flag}={spec}: seed {hi} is too large; seeds are numpy '
                        'RandomState seeds in [0, 2**32 - 1]')
    if len(seeds) + hi - lo >= MAX_SEEDS:
      raise ConfigError(f'{flag}={spec}: more than {MAX_SEEDS} seeds; pass a shorter range')
    seeds.extend(range(lo, hi + 1))
  return seeds


def load_config_file(spec: str):
  """`FILE[:ARG]` -> FILE's `get_config(ARG)` (or `get_config()`), a ConfigDict.

  Raises ConfigError naming the file, the line of the config code where it
  failed, and the original error (kept as `__cause__`).
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  path, *arg = spec.split(':', 1)
  where = f'--config={spec}'
  if not os.path.isfile(path):
    folder = os.path.dirname(path) or '.'
    names = sorted(n for n in os.listdir(folder) if n.endswith('.py')) if os.path.isdir(
        folder) else []
    close = difflib.get_close_matches(os.path.basename(path), names, n=1)
    hint = (f'did you mean {os.path.join(os.path.dirname(path), close[0])}?' if close else
            'pass a config file such as configs/quickstart.py (paths are relative to the '
            'current directory)')
    raise ConfigError(f'could not load {where}: No such file or directory: {path!r}; {hint}')
  name = '_fsig_config_' + re.sub(r'\W', '_', os.path.splitext(os.path.basename(path))[0])
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[name] = module  # as importlib's recipe: dataclasses in the file need it
  try:
    module_spec.loader.exec_module(module)
    get_config = getattr(module, 'get_config', None)
    no_arg = get_config and arg and not _takes_argument(get_config)
    config = get_config(*arg) if get_config and not no_arg else None
  except Exception as e:  # pylint: disable=broad-except  (any error of the user's file)
    kind = '' if isinstance(e, FsigError) else f'{type(e).__name__}: '
    raise ConfigError(f'could not load {where}{_origin(e, path)}: {kind}{_one_line(e)}') from e
  if no_arg:
    raise ConfigError(f'could not load {where}: {path} takes no argument (got {arg[0]!r}); '
                      f'use --config={path}')
  if get_config is None:
    raise ConfigError(f'could not load {where}: {path} defines no get_config(); a config file '
                      'defines get_config(arg) returning a ConfigDict, as configs/quickstart.py')
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f'could not load {where}: get_config() returned a '
                      f'{type(config).__name__}, not an ml_collections.ConfigDict')
  return config


def _takes_argument(fn) -> bool:
  import inspect  # pylint: disable=g-import-not-at-top
  try:
    params = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    return True
  return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
             for p in params)


def _flag_error(e: Exception, config, name: str) -> str:
  """absl's message for a `--name.A.B=V` that does not parse, as the field and the
  kind of value it takes (absl says e.g. "invalid literal for int() with base 10")."""
  text = _one_line(e)
  m = re.match(rf'^flag --({name}(?:\.[\w-]+)+)=(.*?): ', text)
  if config is None or not m:
    return f'{text} (pass --helpshort for the flags)'
  node = config
  for key in m.group(1).split('.')[1:]:
    if not hasattr(node, 'keys') or key not in node:
      return f'{text} (pass --helpshort for the flags)'
    node = node[key]
  field, value = m.group(1), m.group(2)
  if hasattr(node, 'keys'):
    fields = ', '.join(sorted(node.keys())) or 'none'
    return (f'--{field}={value}: {field} is a group of settings, not a value; set one of its '
            f'fields instead, as --{field}.FIELD=VALUE (its fields: {fields})')
  kind = {bool: 'true or false', int: 'an integer', float: 'a number', str: 'a string'}.get(
      type(node), f'a {type(node).__name__}')
  return f'--{field}={value}: {field} takes {kind} (it is {node!r} now), not {value!r}'


def _origin(e: BaseException, path: str) -> str:
  """' (FILE, line N)': the innermost frame of the config code (the file or its folder)."""
  if isinstance(e, SyntaxError) and e.filename:
    return f' ({_shown(e.filename)}, line {e.lineno})'
  folder = os.path.dirname(os.path.abspath(path))
  frames = [f for f in traceback.extract_tb(e.__traceback__)
            if os.path.dirname(os.path.abspath(f.filename)) == folder]
  return f' ({_shown(frames[-1].filename)}, line {frames[-1].lineno})' if frames else ''


def _shown(path: str) -> str:
  """`path` relative to the current directory when inside it, else absolute."""
  rel = os.path.relpath(path)
  return os.path.abspath(path) if rel.startswith('..') else rel


def _one_line(e: BaseException) -> str:
  text = e.msg if isinstance(e, SyntaxError) else str(e)
  return ' '.join(text.split())


def check_overrides(config, argv, name: str = 'config'):
  """Raises ConfigError for a `--name.A.B=...` in argv that names no field of config.

  ml_collections raises a KeyError with a traceback for these; this names the
  closest field (difflib) and the fields there are.
  """
  for arg in argv:
    m = re.match(rf'^--?(?:no)?{name}\.([^=]+)', arg)
    if not m:
      continue
    node, prefix = config, name
    for key in m.group(1).split('.'):
      if not hasattr(node, 'keys'):
        break  # a value, not a group: ml_collections reports a wrong type
      if key not in node:
        fields = sorted(node.keys())
        close = difflib.get_close_matches(key, fields, n=1)
        if not fields:
          raise ConfigError(f'{arg}: {prefix} is empty in this config, so it has no field '
                            f'{key!r} to override; set {prefix} in the config file')
        fix = f'did you mean --{prefix}.{close[0]}? ' if close else ''
        raise ConfigError(f'{arg}: {prefix} has no field {key!r}; {fix}Check the override '
                          f'name; the fields of {prefix} are {", ".join(fields)}')
      node, prefix = node[key], f'{prefix}.{key}'


def config_flags_parser(help_string: str, name: str = 'config'):
  """An absl `flags_parser` (for `app.run`) that defines `--name` from the config file.

  `--name=FILE[:ARG]` is loaded by `load_config_file` and its overrides are
  checked (`check_overrides`) before absl parses the rest; the config is then
  `flags.FLAGS[name].value` (None when not given). User errors (FsigError) and
  flag errors exit through `fail` as one line.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  def parse(argv):
    config = None
    try:
      argv = flags.FLAGS.read_flags_from_files(argv, force_gnu=False)
      spec, rest = _pop_flag(argv, name)
      if spec is None:  # --help, or the launcher reports the missing --config
        config_flags.DEFINE_config_file(name, None, help_string)
      else:
        config = load_config_file(spec)
        check_overrides(config, rest, name)
        config_flags.DEFINE_config_dict(name, config, help_string, lock_config=True,
                                        sys_argv=rest)
      # --help lists it with the launcher's flags (absl keys flags by module; argv[0] is main's).
      flags.FLAGS.register_key_flag_for_module(argv[0], flags.FLAGS[name])
      return flags.FLAGS(rest)
    except FsigError as e:
      fail(str(e))
    except flags.Error as e:
      fail(_flag_error(e, config, name))
  return parse


def _pop_flag(argv, name):
  """(value of --name=V or --name V, argv without it); (None, argv) when absent."""
  for i, arg in enumerate(argv[1:], 1):
    m = re.match(rf'^--?{name}(=(.*))?$', arg)
    if m and m.group(1) is not None:
      return m.group(2), argv[:i] + argv[i + 1:]
    if m and i + 1 < len(argv):
      return argv[i + 1], argv[:i] + argv[i + 2:]
  return None, argv
