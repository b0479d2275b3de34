"""The shipped source model (models/anime64) and the quickstart target (data/anime64_sketch10):
present, loadable, consistent with the model card, and exactly what their commands make.

These are deliverables of the repository, not optional data: the tests fail (never skip)
when they are missing.
"""
import json
import re

import jax
import numpy as np

import fsig_jax
from conftest import ROOT
from fsig_jax.data.images import list_image_files, load_image_files
from fsig_jax.data.targets import model_sketches

MODEL = ROOT / 'models' / 'anime64'
TARGET = ROOT / 'data' / 'anime64_sketch10'


def _card():
  return json.loads((MODEL / 'card.json').read_text())


def test_shipped_model_loads_and_matches_its_card():
  card = _card()
  bundle = fsig_jax.load_pretrained(str(MODEL), require_discriminator=True)
  cfg = bundle.config
  assert cfg.resolution == card['architecture']['resolution'] == 64
  assert list(cfg.g_channels) == card['architecture']['widths']
  for net in ('G_ema', 'D'):
    n = sum(np.size(x) for x in jax.tree.leaves(bundle.nets[net]['params']))
    assert n == card['params'][net], net
  size_mb = sum(f.stat().st_size for f in MODEL.rglob('*') if f.is_file()) / 1e6
  assert size_mb <= 25, f'the shipped model is {size_mb:.1f} MB, over the 25 MB limit'
  imgs = np.asarray(bundle.generate(bundle.sample_z(jax.random.PRNGKey(0), 4)))
  assert imgs.shape == (4, 64, 64, 3) and np.isfinite(imgs).all()
  assert imgs.std() > 0.1, 'samples are (nearly) constant'
  logits = np.asarray(bundle.discriminate(imgs))
  assert logits.shape[0] == 4 and np.isfinite(logits).all()
  # The card's text shows the numbers card.json holds, and they are sane: the model is
  # scored against the held-out faces next to the real-data floor, which it cannot beat.
  text = (MODEL / 'MODEL_CARD.md').read_text()
  fid, floor = card['model_scores']['FID-VGG'], card['floor_scores']['FID-VGG']
  assert f'{fid:.4g}' in text and f'{floor:.4g}' in text
  assert 0 < floor < fid
  assert f"{card['training']['steps']:,} steps" in text
  assert card['training']['images_seen'] == card['training']['steps'] * card['hparams']['batch_size']
  # A model trained in stages (a release continued): each stage adds up, the totals are shown.
  stages = card.get('stages', [])
  for s in stages:
    assert s['images_seen'] == s['steps'] * s['hparams']['batch_size'], s
  if stages:
    everything = stages + [card['training']]
    for k in ('steps', 'images_seen'):
      assert card['total'][k] == sum(s[k] for s in everything), k
    assert f"In {len(everything)} stages, {card['total']['steps']:,} steps" in text


def test_quickstart_target_is_what_make_targets_makes():
  files = list_image_files(TARGET)
  assert len(files) == 10
  provenance = (TARGET / 'PROVENANCE.txt').read_text()
  m = re.search(r'--checkpoint=(\S+) .*--num=(\d+) --seed=(\d+)', provenance)
  assert m and m.group(1) == 'models/anime64' and int(m.group(2)) == 10, provenance
  committed = load_image_files(files, 64)
  remade = model_sketches(fsig_jax.load_pretrained(str(MODEL)), 10, int(m.group(3)))
  # PNG storage rounds to 1/127.5; a different CPU may move a few pixels across XDoG's
  # threshold, so allow a handful, not a different image.
  diff = np.abs(committed - remade)
  assert (diff > 0.02).mean() < 0.01, f'{(diff > 0.02).mean():.2%} of pixels differ'
