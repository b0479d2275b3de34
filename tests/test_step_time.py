"""benchmarks/step_time.py times whole lazy-regularisation cycles and labels each
kind of step (no timing is asserted: benchmarks measure, tests check the labels)."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_one_cycle_is_timed_and_each_step_labelled(tmp_path):
  out = tmp_path / 'rows.json'
  r = subprocess.run([sys.executable, 'benchmarks/step_time.py', '--resolutions=8',
                      '--methods=tgan', '--cycles=1', '--batch=2', f'--out={out}'],
                     cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  row, = json.loads(out.read_text())
  # d_reg_every 16, g_reg_every 4: steps 1..16 hold 12 plain, 3 path-length-only
  # (4, 8, 12) and one with both (16).
  assert (row['timed_steps'], row['plain_steps'], row['pl_steps'], row['r1_pl_steps']) == (
      16, 12, 3, 1)
  for k in ('mean_step_s', 'plain_step_s', 'pl_step_s', 'r1_pl_step_s', 'core_step_s'):
    assert row[k] > 0, (k, row)


@pytest.mark.slow
def test_memory_only_reports_the_compiled_step_without_timing_it(tmp_path):
  out = tmp_path / 'rows.json'
  r = subprocess.run([sys.executable, 'benchmarks/step_time.py', '--resolutions=16',
                      '--methods=tgan,cdc', '--memory_only', '--batch=2', '--channel_multiplier=1',
                      f'--out={out}'],
                     cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  tgan, cdc = json.loads(out.read_text())
  for row in (tgan, cdc):
    assert not any(k.endswith('_step_s') for k in row), row
    assert row['temp_gib'] > 0 and row['argument_gib'] > 0 and row['compile_s'] > 0, row
  assert (tgan['method'], cdc['method']) == ('tgan', 'cdc')


@pytest.mark.slow
def test_interleave_times_methods_and_conv_impls_in_rotation_with_ratios(tmp_path):
  out = tmp_path / 'rows.json'
  r = subprocess.run([sys.executable, 'benchmarks/step_time.py', '--resolutions=8',
                      '--methods=tgan,freezed', '--conv_impls=im2col,hybrid', '--interleave',
                      '--batch=2', f'--out={out}'],
                     cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  rows = json.loads(out.read_text())
  labels = ['tgan (im2col)', 'tgan (hybrid)', 'freezed (im2col)', 'freezed (hybrid)']
  assert [(row['method'], row['conv_impl']) for row in rows] == [
      ('tgan', 'im2col'), ('tgan', 'hybrid'), ('freezed', 'im2col'), ('freezed', 'hybrid')]
  for row in rows:
    assert row['interleaved'] == labels, row
    assert (row['timed_steps'], row['plain_steps'], row['pl_steps'], row['r1_pl_steps']) == (
        16, 12, 3, 1)
  assert not any(k.startswith('ratio_to') for k in rows[0])
  for row in rows[1:]:
    ratio = row['ratio_to_tgan (im2col)']
    assert ratio['mean_step_s'] == pytest.approx(
        row['mean_step_s'] / rows[0]['mean_step_s'], rel=0.02)
