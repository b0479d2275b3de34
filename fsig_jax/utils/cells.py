"""The finished runs of a long benchmark table, kept so that the table resumes and can be committed.

A table (benchmarks/fsig_table.py, gpd_table.py, kdit_table.py,
kdit_spade_table.py) trains runs of minutes to hours each, often more of them
than one session of a machine holds. Each finished run is a *cell* in a
folder: `NAME.json` (its record: scores, times) and, for runs that give a row
of the table's picture, `NAME.npz` (those images as the grid's own 8-bit
pixels, ~90 KB for 8 images at 64 px). A cell is all a table needs of a run
once it is scored, so a table reads its finished cells back instead of
training them again, several tables with the same settings share one folder,
and a folder small enough to commit (`benchmarks/results/*/cells*`) lets a
later session, on a new checkout, finish the table.

`settings.json` in the folder holds the settings every cell depends on (steps,
source, widths...); opening the folder with other settings while it holds
cells is a ValueError naming the settings that differ, so one table never
mixes runs of two settings. Files are written to a temporary name and
renamed, so a killed table never leaves half a cell.
"""
import json
import os
import statistics
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from fsig_jax.utils.files import write_atomic, write_text
from fsig_jax.utils.images import from_uint8, to_uint8


def finite(x):
  """NaN / inf -> None throughout a JSON tree (strict JSON)."""
  if isinstance(x, dict):
    return {k: finite(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [finite(v) for v in x]
  if isinstance(x, float) and not np.isfinite(x):
    return None
  return x


def _json(x) -> Any:
  return json.loads(json.dumps(finite(x), default=str))


class Cells:
  """A table's finished runs under `cells_dir`, made with `settings`.

  `defaults`: the value of a setting added after a folder was first written,
  for folders saved without it. `flag`: the option that chose the folder, named
  in the error for mixed settings.
  """

  def __init__(self, cells_dir: str, settings: Dict[str, Any],
               defaults: Optional[Dict[str, Any]] = None, flag: str = '--cells'):
    self.dir = cells_dir
    os.makedirs(self.dir, exist_ok=True)
    path = os.path.join(self.dir, 'settings.json')
    mine = _json(settings)
    defaults = defaults or {}
    if os.path.isfile(path):
      with open(path) as f:
        saved = json.load(f)
      changed = [k for k in mine if saved.get(k, defaults.get(k)) != mine[k]]
      if changed and any(n.endswith('.json') and n != 'settings.json'
                         for n in os.listdir(self.dir)):
        raise ValueError(
            f'{self.dir} holds runs made with other settings ({", ".join(changed)}: saved '
            f'{[saved.get(k) for k in changed]}, now {[mine[k] for k in changed]}); '
            f'pass another {flag} folder, or delete {self.dir} to start the table again')
    write_text(path, json.dumps(mine, indent=2))

  def _path(self, name: str) -> str:
    if not name or os.sep in name or name == 'settings':
      raise ValueError(f'bad cell name {name!r}')
    return os.path.join(self.dir, name)

  def has(self, name: str) -> bool:
    return os.path.isfile(self._path(name) + '.json')

  def names(self) -> Sequence[str]:
    return sorted(n[:-5] for n in os.listdir(self.dir)
                  if n.endswith('.json') and n != 'settings.json')

  def load(self, name: str) -> Optional[Tuple[dict, Optional[np.ndarray]]]:
    """(record, images in [-1, 1] or None) of a finished run, or None."""
    if not self.has(name):
      return None
    path = self._path(name)
    with open(path + '.json') as f:
      record = json.load(f)
    images = None
    if os.path.isfile(path + '.npz'):
      with np.load(path + '.npz') as f:
        images = f['samples']
      if images.dtype == np.uint8:  # 8-bit rows (fsig_table's older cells hold float32)
        images = from_uint8(images)
    return record, images

  def save(self, name: str, record: dict, images=None) -> None:
    """Writes a finished run: `images` (N, H, W, 3) in [-1, 1], stored as the grid's
    8-bit pixels (to_uint8, which from_uint8 inverts exactly), then the record, so
    that a record always has its images."""
    path = self._path(name)
    if images is not None:
      write_atomic(path + '.npz',
                   lambda p: np.savez_compressed(p, samples=to_uint8(np.asarray(images))),
                   suffix='.tmp.npz')
    write_text(path + '.json', json.dumps(finite(record), indent=2, default=str))

  def plan(self, names: Sequence[str]) -> int:
    """Names the cells this invocation will `get`, for the progress line: returns
    how many are still to run."""
    self._todo = sum(not self.has(n) for n in names)
    self._run_s = []
    return self._todo

  def get(self, name: str, run: Callable[[], Tuple[dict, Any]]):
    """(record, images) of cell `name`: read back when finished, else `run()` (which
    trains and scores the run and returns its record and images or None), saved;
    after `plan`, each run prints 'NAME: run k of n, about T left'."""
    if not self.has(name):
      t0 = time.time()
      record, images = run()
      self.save(name, record, images)
      if getattr(self, '_todo', 0):
        self._run_s.append(time.time() - t0)
        print(f'{name}: {eta(self._run_s, self._todo)}', flush=True)
    return self.load(name)


def eta(trained_s: Sequence[float], todo: int) -> str:
  """'run k of n, about T left': the runs left at the mean time of those trained here."""
  left = (todo - len(trained_s)) * statistics.fmean(trained_s)
  when = f'{left / 60:.0f} min' if left < 7200 else f'{left / 3600:.1f} h'
  return f'run {len(trained_s)} of {todo}, about {when} left'


def model_release(path: str) -> str:
  """A released model's identity for a table's settings, the same on every checkout:
  from its card.json (launch/release_model.py) its name, training step and
  release date, so that cells of two releases of `models/anime64` never share a
  table; a folder without a card is named by its path."""
  card = os.path.join(path, 'card.json')
  if not os.path.isfile(card):
    return path
  with open(card) as f:
    info = json.load(f)
  name = info.get('name') or os.path.basename(os.path.normpath(path))
  return f'{name} (step {info.get("step")}, {info.get("date")})'
