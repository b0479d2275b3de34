"""The Colab notebooks: the quickstart executes top to bottom (tiny settings on CPU);
every notebook is valid JSON whose code compiles."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / 'colabs').glob('*.ipynb'))


def notebook_code(path, overrides: str = '') -> str:
  """The code cells as one script: shell (!) and magic (%) lines dropped, `overrides`
  run right after the cell tagged 'parameters' (as papermill does)."""
  parts = []
  for cell in json.loads(path.read_text())['cells']:
    if cell['cell_type'] != 'code':
      continue
    kept, shell = [], False
    for line in ''.join(cell['source']).splitlines():
      if shell or line.lstrip().startswith(('!', '%')):
        shell = line.rstrip().endswith('\\')  # a shell command continues on the next line
        continue
      kept.append(line)
    parts.append('\n'.join(kept))
    if 'parameters' in cell['metadata'].get('tags', []):
      parts.append(overrides)
  return '\n\n'.join(parts)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_code_compiles(path):
  compile(notebook_code(path), str(path), 'exec')


@pytest.mark.slow
def test_quickstart_executes_with_tiny_settings(tmp_path):
  # The notebook as written (the shipped model, the committed sketches), only smaller and
  # with TGAN (the cheapest step to compile) instead of CDC.
  overrides = (f'METHOD = "tgan"\nSTEPS = 2\nEVAL_SAMPLES = 8\n'
               f'WORKDIR = {str(tmp_path / "wd")!r}\n')
  script = tmp_path / 'quickstart.py'
  script.write_text(notebook_code(ROOT / 'colabs' / 'quickstart.ipynb', overrides))
  env = {**os.environ, 'MPLBACKEND': 'Agg'}
  r = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'intra-LPIPS' in r.stdout and 'FID-VGG' in r.stdout
  assert (tmp_path / 'wd' / 'model').is_dir()
