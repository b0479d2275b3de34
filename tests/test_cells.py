"""fsig_jax.utils.cells: a table's finished runs, shared by every benchmark table."""
import json

import numpy as np
import pytest

from fsig_jax.utils import cells as cells_lib
from fsig_jax.utils.images import to_uint8


def test_cells_round_trip_and_settings(tmp_path):
  """A cell reads back its record and its images as the grid's 8-bit pixels; other
  settings are refused once the folder holds a cell, naming the setting and the flag;
  a setting added later resumes a folder saved without it at its default."""
  folder = str(tmp_path / 'cells')
  cells = cells_lib.Cells(folder, {'steps': 10, 'widths': {'nf': 16}})
  assert not cells.has('a.seed0') and cells.load('a.seed0') is None
  images = np.random.default_rng(0).uniform(-1.2, 1.2, (4, 8, 8, 3)).astype(np.float32)
  cells.save('a.seed0', {'FID-VGG': 3.5, 'bad': float('nan')}, images)
  cells.save('b.seed0', {'FID-VGG': 4.0})
  record, back = cells.load('a.seed0')
  assert record == {'FID-VGG': 3.5, 'bad': None}  # strict JSON
  assert np.array_equal(to_uint8(back), to_uint8(images))
  assert cells.load('b.seed0')[1] is None
  assert list(cells.names()) == ['a.seed0', 'b.seed0']
  assert not list(tmp_path.glob('cells/*tmp*'))
  cells_lib.Cells(folder, {'steps': 10, 'widths': {'nf': 16}})  # same settings: resumes
  with pytest.raises(ValueError, match=r'other settings \(widths: saved \[\{.nf.: 16\}\], '
                     r'now \[\{.nf.: 32\}\]\); pass another --out folder'):
    cells_lib.Cells(folder, {'steps': 10, 'widths': {'nf': 32}}, flag='--out')
  with pytest.raises(ValueError, match=r'other settings \(teacher'):
    cells_lib.Cells(folder, {'steps': 10, 'widths': {'nf': 16}, 'teacher': 'x'})
  cells_lib.Cells(folder, {'steps': 10, 'widths': {'nf': 16}, 'teacher': 'x'},
                  defaults={'teacher': 'x'})
  assert json.loads((tmp_path / 'cells' / 'settings.json').read_text())['teacher'] == 'x'
  # An empty folder takes any settings.
  cells_lib.Cells(str(tmp_path / 'other'), {'steps': 10})
  cells_lib.Cells(str(tmp_path / 'other'), {'steps': 20})
  with pytest.raises(ValueError, match='bad cell name'):
    cells.has('settings')


def test_eta():
  """The runs left at the mean time of the runs trained in this invocation."""
  assert cells_lib.eta([60.0, 120.0], 6) == 'run 2 of 6, about 6 min left'
  assert cells_lib.eta([3600.0], 4) == 'run 1 of 4, about 3.0 h left'
  assert cells_lib.eta([10.0], 1) == 'run 1 of 1, about 0 min left'


def test_model_release(tmp_path):
  """A released model is named by its card's name, step and date (two releases differ,
  two checkouts agree); a folder without a card by its path."""
  assert cells_lib.model_release(str(tmp_path)) == str(tmp_path)
  (tmp_path / 'card.json').write_text(json.dumps({'step': 21000, 'date': '2026-11-30'}))
  assert cells_lib.model_release(str(tmp_path)) == f'{tmp_path.name} (step 21000, 2026-11-30)'
  (tmp_path / 'card.json').write_text(json.dumps({'name': 'anime64', 'step': 1, 'date': 'd'}))
  assert cells_lib.model_release(str(tmp_path) + '/') == 'anime64 (step 1, d)'


def test_get_runs_a_missing_cell_once_and_reports_progress(tmp_path, capsys):
  """get() runs and saves a missing cell, reads a finished one back without running
  it; after plan() each run prints the ETA line over the cells still to run."""
  cells = cells_lib.Cells(str(tmp_path), {'steps': 1})
  cells.save('done.seed0', {'x': 0})
  calls = []

  def run():
    calls.append(1)
    return {'x': len(calls)}, None
  assert cells.plan(['done.seed0', 'a.seed0', 'b.seed0']) == 2
  assert cells.get('done.seed0', run) == ({'x': 0}, None) and not calls
  assert cells.get('a.seed0', run) == ({'x': 1}, None)
  assert cells.get('a.seed0', run) == ({'x': 1}, None) and len(calls) == 1
  assert capsys.readouterr().out.startswith('a.seed0: run 1 of 2, about ')
