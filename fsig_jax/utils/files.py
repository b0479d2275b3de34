"""Writing outputs: an OSError of a write is one `WriteError` line naming the path and the fix.

A workdir that is an existing file, a read-only output folder or a full disk
otherwise ends in an OSError traceback from deep inside a save. Each writer of
fsig-jax (sample grids, run records, evaluation results, checkpoints) goes
through `writing` (or `make_dirs` / `write_text`), so all of them name the
path that failed, why, and what to do.
"""
import contextlib
import errno
import os
import pathlib
from typing import Any, Callable, Optional

from fsig_jax.errors import WriteError

_FULL = (errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC))
_DENIED = (errno.EACCES, errno.EPERM)
# Text of non-OSError failures from native writers (tensorstore) that mean the same.
_TEXTS = {'No space left on device': errno.ENOSPC, 'Disk quota exceeded': errno.ENOSPC,
          'Permission denied': errno.EACCES, 'Read-only file system': errno.EROFS}


def _file_in_the_way(path: str) -> Optional[str]:
  """The first existing non-folder on the way to `path` (itself included), or None."""
  p = pathlib.Path(os.path.abspath(path))
  for q in reversed([p, *p.parents]):
    if q.exists() and not q.is_dir():
      return str(q)
    if not q.exists():
      return None
  return None


def write_error(path: str, err: BaseException, setting: str = '', note: str = '') -> WriteError:
  """A WriteError for `err` (an OSError, or a native writer's error of the same
  meaning) while writing `path`; `setting` names the option that chose the path
  (e.g. '--workdir'), `note` adds what was kept."""
  code = getattr(err, 'errno', None)
  if code is None:
    code = next((c for t, c in _TEXTS.items() if t in str(err)), None)
  other = f'pass another {setting}' if setting else 'write to another path'
  blocker = _file_in_the_way(path) if code in (errno.EEXIST, errno.ENOTDIR, None) else None
  if blocker is not None:
    why = f'{blocker} is a file, not a folder'
    fix = f'{other} (a folder, or a new path), or move the file away'
  elif code in _FULL:
    why, fix = 'no space left on the device (disk full)', f'free disk space or {other}'
  elif code == errno.EROFS:
    why, fix = 'the file system is read-only', f'{other} on a writable disk'
  elif code in _DENIED:
    why, fix = 'permission denied', f'{other} in a folder you can write to, or fix its permissions'
  elif code == errno.EISDIR:
    why, fix = 'it is a folder', f'{other} that names a file'
  else:
    why = getattr(err, 'strerror', None) or f'{type(err).__name__}: {err}'
    fix = f'check the path or {other}'
  note = f'; {note}' if note else ''
  return WriteError(f'cannot write {path}: {why}{note}. Fix: {fix}.')


def is_write_failure(err: BaseException) -> bool:
  """True for an OSError or a native writer's error that reads like one (disk full, denied)."""
  return isinstance(err, OSError) or any(t in str(err) for t in _TEXTS)


@contextlib.contextmanager
def writing(path: str, setting: str = '', note: str = ''):
  """Runs the body; an OSError there (or a native writer's error that reads like one,
  `is_write_failure`) is raised as `write_error(path, ...)`; other errors pass."""
  try:
    yield
  except WriteError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (re-raised unless a write failure)
    if not is_write_failure(e):
      raise
    raise write_error(path, e, setting, note) from e


def make_dirs(path: str, setting: str = '') -> str:
  """os.makedirs(path, exist_ok=True) with a WriteError naming the path; returns path."""
  with writing(path, setting):
    os.makedirs(path, exist_ok=True)
  return path


def check_writable(folder: str, setting: str = '') -> str:
  """Creates `folder` and writes (and removes) a probe file in it, so an output that
  cannot be written fails as one WriteError before the work that would fill it.
  Returns folder."""
  make_dirs(folder, setting)
  probe = os.path.join(folder, f'.write_check.{os.getpid()}')
  with writing(folder, setting):
    try:
      with open(probe, 'w') as f:
        f.write('ok')
    finally:
      if os.path.exists(probe):
        os.remove(probe)
  return folder


def write_atomic(path: str, write: Callable[[str], Any], suffix: str = '.tmp',
                 setting: str = '') -> str:
  """Calls write(tmp) for a temporary file beside `path`, then renames it to `path`,
  creating the folder; a failure is a WriteError naming the path and the fix,
  leaves any previous file at `path` as it was and no temporary file. Returns path."""
  tmp = f'{path}{suffix}'
  with writing(path, setting):
    try:
      os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
      write(tmp)
      os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  return path


def write_text(path: str, text: str, setting: str = '') -> str:
  """Writes `text` to `path` atomically (`write_atomic`). Returns path."""
  def write(tmp):
    with open(tmp, 'w') as f:
      f.write(text)
  return write_atomic(path, write, setting=setting)
