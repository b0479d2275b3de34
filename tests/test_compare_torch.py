"""benchmarks/compare_torch.py refuses, in one line naming the fix, to run
without its user-supplied inputs (the comparison itself needs torch and a
rosinality checkout, so it is run by hand; see the script's docstring)."""
import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT


def run(*args):
  return subprocess.run([sys.executable, 'benchmarks/compare_torch.py', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


def test_missing_rosinality_is_one_clear_line():
  r = run()
  assert r.returncode == 2
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1, r.stderr
  assert '--rosinality=PATH' in lines[0] and 'rosinality/stylegan2-pytorch' in lines[0]
  assert r.stdout == ''


def test_wrong_rosinality_path_is_one_clear_line(tmp_path):
  r = run(f'--rosinality={tmp_path}')
  assert r.returncode == 2
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1, r.stderr
  assert str(tmp_path) in lines[0] and '--rosinality=PATH' in lines[0]


@pytest.mark.skipif(importlib.util.find_spec('torch') is not None,
                    reason='torch is installed: the missing-torch message cannot show')
def test_missing_torch_names_the_pin(tmp_path):
  (tmp_path / 'op').mkdir()
  (tmp_path / 'model.py').write_text('')
  (tmp_path / 'op' / 'upfirdn2d.py').write_text('')
  r = run(f'--rosinality={tmp_path}')
  assert r.returncode == 2
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and 'pip install torch==2.13.0' in lines[0], r.stderr
