"""Release a pretrained source model: export it, score it, write its model card.

  python launch/release_model.py --workdir=runs/pretrain_anime64 --out=models/anime64

Reads the newest (or --step) checkpoint of a pretraining workdir and writes
  OUT/            fsig-jax model: the EMA generator G_ema in float32 and the
                  discriminator D (float16 storage with --float16=D, read back
                  as float32), the two networks every adaptation method needs;
  OUT/MODEL_CARD.md  data, architecture, training (steps, images seen, wall time
                  from the run's logs, hardware), scores, how to reproduce;
  OUT/card.json   every number of the card, as computed;
  OUT/samples.png an 8x8 grid of G_ema samples (seed 0, random noise).
A run that continued an earlier release (its model.checkpoint was that release)
is released with --continues=OLD/card.json: the card then lists the earlier
release's training as stage(s) before this run's and adds up steps, images seen
and wall time.
Scores: FID-VGG / KID-VGG of --num_samples samples against the run's held-out
reference (config.eval.reference), next to the same metrics of as many real
training images against that reference: the floor a perfect model would reach
with this many samples. Every number in the card comes from this command.
"""
import datetime
import json
import os
import platform
import shlex
import shutil
import sys

from absl import flags
import jax
import numpy as np

from fsig_jax.convert.errors import CheckpointError
from fsig_jax.convert.load import load_bundle, save_bundle
from fsig_jax.data.images import DataError
from fsig_jax.engine import export
from fsig_jax.metrics import evaluate
from fsig_jax.utils.cli import fail, run_main
from fsig_jax.utils.files import write_text
from fsig_jax.utils.images import save_grid
from fsig_jax.utils.logs import quiet_logs

WORKDIR = flags.DEFINE_string('workdir', None, 'the pretraining workdir', required=True)
STEP = flags.DEFINE_integer('step', None, 'checkpoint step (default: newest)')
OUT = flags.DEFINE_string('out', 'models/anime64', 'model directory to write')
NAME = flags.DEFINE_string('name', None, 'model name in the card (default: basename of --out)')
REFERENCE = flags.DEFINE_string('reference', None, "held-out images (default: the run's "
                                "eval.reference, else the 'test' folder beside its 'train')")
NUM = flags.DEFINE_integer('num_samples', 2000, 'samples (and real images for the floor)')
SEED = flags.DEFINE_integer('seed', 0, 'evaluation / floor seed')
FLOAT16 = flags.DEFINE_list('float16', ['D'], 'nets stored as float16 (halves their size)')
HARDWARE = flags.DEFINE_string('hardware', None, 'where the run trained (default: this '
                               "machine's CPU count and jax devices)")
OVERWRITE = flags.DEFINE_bool('overwrite', False, 'replace --out if it exists')
TRAIN_CONFIG = flags.DEFINE_string('train_config', 'configs/pretrain_anime64.py',
                                   'the config the run trained with (named in the card)')
TRAINING_NOTE = flags.DEFINE_string('training_note', '', 'a sentence on how the run was '
                                    'trained, added to the card (e.g. shared or paused hardware)')
CONTINUES = flags.DEFINE_string('continues', None, 'card.json of the release this run started '
                                'from (its model.checkpoint): the card lists that release\'s '
                                'training as earlier stages (read before --out is replaced)')
TRAIN = flags.DEFINE_string('train', None, "the training folder the card names and the floor "
                            "draws from (default: the run's data.source); for a run that trained "
                            'on a copy or subset of it on another machine (say so in the note)')
SECONDS = flags.DEFINE_float('training_seconds', None, "the run's wall time in seconds when its "
                             'logs cannot time it (default: from WORKDIR/logs)')
CACHE = flags.DEFINE_string('cache_dir', None, 'reference feature cache (default '
                            'WORKDIR/eval/cache)')


def _dir_mb(path: str) -> float:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
             for f in fs) / 1e6


def _params(tree) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def _default_hardware() -> str:
  devs = {d.device_kind for d in jax.devices()}
  return f'{os.cpu_count()} CPU cores ({platform.machine()}), jax devices: {sorted(devs)}'


def _shown(path: str) -> str:
  """A data path as the card shows it: relative to the working directory."""
  return os.path.relpath(path) if os.path.isabs(path) else path


# Flags whose values the card shows as a placeholder: the workdir is a path on the machine
# that trained the model (as in the training command, --workdir=WORKDIR), the note is free text.
_PLACEHOLDERS = {'--workdir': 'WORKDIR', '--training_note': '...'}


def _paths_shown(result: dict) -> dict:
  """An evaluation result with its data paths ('reference', 'real') as _shown."""
  return {k: _shown(v) if k in ('reference', 'real') and isinstance(v, str) else v
          for k, v in result.items()}


def _shown_args(args) -> str:
  """The command line as the card shows it: shell-quoted, with _PLACEHOLDERS."""
  shown, args = [], list(args)
  while args:
    a = args.pop(0)
    name = a.split('=', 1)[0]
    if name in _PLACEHOLDERS:
      if '=' not in a and args:
        args.pop(0)  # the value as a separate argument
      a = f'{name}={_PLACEHOLDERS[name]}'
    shown.append(a)
  return shlex.join(shown)


def _hours(seconds: float) -> str:
  return f'{seconds / 3600:.1f} h'


def earlier_stages(card_path: str) -> list:
  """The training stages of the release at `card_path` (its own earlier stages, then its run),
  each {release, date, hardware, data, hparams, steps, images_seen, seconds, config, command,
  note}: what a card of a run that continued that release lists before its own run."""
  try:
    with open(card_path) as f:
      prev = json.load(f)
    t = prev['training']
    stage = {'release': prev['name'], 'date': prev['date'], 'hardware': prev['hardware'],
             'data': prev['data']['train'], 'hparams': prev['hparams'],
             **{k: t[k] for k in ('steps', 'images_seen', 'seconds', 'config', 'command', 'note')}}
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f'--continues={card_path}: not a release card.json ({type(e).__name__}: '
                     f'{e}); pass the card.json of the model the run started from') from None
  return list(prev.get('stages', [])) + [stage]


def _stage_text(i: int, s: dict, last: bool) -> str:
  hp = s['hparams']
  when = 'this release' if last else f"released {s['date']} as {s['release']}"
  start = ', started from stage {}\'s G_ema (as G and G_ema) and D with a new optimiser'.format(
      i - 1) if i > 1 else ' from random weights'
  return (f"{i}. ({when}) {s['steps']:,} steps at batch {hp['batch_size']} = "
          f"{s['images_seen']:,} images{start}; R1 gamma {hp['r1_gamma']:.4g}, G_ema beta "
          f"{hp['ema_beta']:.6f} per step; `{s['command']}`; wall time {_hours(s['seconds'])} on "
          f"{s['hardware']}. {s.get('note', '')}".rstrip())


def card_text(c: dict) -> str:
  """MODEL_CARD.md from card.json's dict."""
  m, f, t, a = c['model_scores'], c['floor_scores'], c['training'], c['architecture']
  rows = '\n'.join(f'| {k} | {m[k]:.4g} | {f[k]:.4g} |' for k in m['metrics'])
  hp = c['hparams']
  stages = c.get('stages') or []
  if stages:
    total = c['total']
    run = dict(t, hardware=c['hardware'], hparams=hp)
    lines = [_stage_text(i + 1, s, False) for i, s in enumerate(stages)]
    lines.append(_stage_text(len(stages) + 1, run, True))
    made = (f"`{stages[0]['command']}`, then continued (stage by stage below) with "
            f"`{t['command']}`")
    training = (f"In {len(stages) + 1} stages, {total['steps']:,} steps and "
                f"{total['images_seen']:,} images seen in all "
                f"({total['images_seen'] / c['data']['train_count']:.1f} epochs of "
                f"{c['data']['train_count']:,}), wall time {_hours(total['seconds'])}; lr "
                f"{hp['lr']}, Adam betas (0, 0.99), R1 every 16 steps, path length "
                "regularisation, style mixing 0.9 throughout; the rest as in "
                f"{t['config']}.\n\n" + '\n'.join(lines))
    shown_step = f"{total['steps']:,} steps"
  else:
    made = f"`{t['command']}`"
    training = f"""{t['steps']:,} steps at batch {hp['batch_size']} = {t['images_seen']:,} images seen
({t['images_seen'] / c['data']['train_count']:.1f} epochs); lr {hp['lr']}, Adam betas
(0, 0.99), R1 gamma {hp['r1_gamma']:.4g} every 16 steps, path length regularisation,
style mixing 0.9, G_ema with beta {hp['ema_beta']:.6f} per step; the rest as in
{t['config']}.
Wall time {_hours(t['seconds'])} over {t['processes']} process(es) (resumed runs;
compilation and steps redone after interruptions included), on: {c['hardware']}.
{t.get('note', '')}"""
    shown_step = f"step {t['steps']}"
  return f"""# {c['name']}: StyleGAN2 on anime faces, {a['resolution']} px

The source model fsig-jax ships, so that every method runs offline: adapt it to
10 images with `python launch/main.py --config=configs/quickstart.py`. Trained
by fsig-jax from scratch (no other model's weights) with
{made}; released by `{c['command']}`, which computed every
number below (also in `card.json`).

## Data
{c['data']['train']} ({c['data']['train_count']} images, 64x64 JPEG crops of anime
faces; horizontal flips). Held out: {c['data']['reference']} ({f['reference_count']} images),
never seen in training.

## Architecture
StyleGAN2 (config-f layers: mapping with pixel norm, modulated/demodulated convs,
noise, skip ToRGB; residual D with minibatch stddev), {a['resolution']} px, z/w
{a['z_dim']}/{a['w_dim']}, {a['n_mlp']} mapping layers, widths
{a['widths']} (4 px to {a['resolution']} px). Parameters: G {c['params']['G_ema']:,},
D {c['params']['D']:,}. Stored as float32 except {c['storage']} ({c['size_mb']:.1f} MB; read back
as float32);
load with `fsig_jax.load_pretrained('{c['out']}')`.

## Training
{training}

## Scores
{c['num_samples']} samples of G_ema (truncation 1, random noise, seed {c['seed']}) vs the
{f['reference_count']} held-out faces; the floor is {f['num_images']} random real
training faces vs the same held-out faces, i.e. what a perfect generator would
score with this many samples.

| metric | {c['name']} ({shown_step}) | real train vs test (floor) |
|---|---|---|
{rows}

FID-VGG / KID-VGG use VGG16 features (relu5_3 of the LPIPS trunk), not
Inception-v3: compare them only with each other, never with published FIDs.

![samples](samples.png)

## Use and limits
A small research model for few-shot adaptation experiments, tests and demos
on CPUs; not a model of faces in general. It reproduces the look of its
training crops, including their artefacts. Released {c['date']}.
"""


def main(argv):
  del argv
  quiet_logs()
  out = os.path.abspath(OUT.value)
  if os.path.exists(out) and not OVERWRITE.value:
    fail(f'{out} exists; pass --overwrite to replace it')
  try:
    bundle, step = export.bundle_from_workdir(WORKDIR.value, STEP.value)
    run_cfg = export.read_run_config(WORKDIR.value)
  except CheckpointError as e:
    fail(str(e))
  train = TRAIN.value or (run_cfg.get('data') or {}).get('source')
  if not isinstance(train, str) or not os.path.isdir(train):
    fail(f'{WORKDIR.value}: its config.json names no training folder here (data.source = '
         f'{train!r}); the card and the floor need it: pass --train=FOLDER')
  try:
    stages = earlier_stages(CONTINUES.value) if CONTINUES.value else []
  except ValueError as e:
    fail(str(e))
  # --reference, else the run's eval reference, else the held-out folder beside 'train'.
  reference = (REFERENCE.value or (run_cfg.get('eval') or {}).get('reference') or
               evaluate.default_sources(train, 'auto', '')[0])
  if not reference or reference == train:
    fail(f'no held-out set for {train}: set eval.reference in the run config (a folder '
         'of images never trained on)')
  nets = {k: bundle.nets[k] for k in ('G_ema', 'D')}
  bundle = bundle.replace(nets=nets, source=f'fsig-jax {os.path.basename(out)} (step {step})')
  try:
    if os.path.exists(out):
      shutil.rmtree(out)
    save_bundle(bundle, out, float16=FLOAT16.value)
  except ValueError as e:
    fail(str(e))
  shipped = load_bundle(out)  # score exactly what users load
  cache = CACHE.value or os.path.join(WORKDIR.value, 'eval', 'cache')
  print(f'scoring {NUM.value} samples of step {step} vs {reference} ...', flush=True)
  try:
    scores = evaluate.evaluate(shipped, reference=reference, num_samples=NUM.value,
                               seed=SEED.value, metrics='fid_vgg,kid_vgg', cache_dir=cache)
    print(evaluate.summary(scores), flush=True)
    print(f'floor: {NUM.value} real images of {train} vs {reference} ...', flush=True)
    floor = evaluate.real_floor(train, reference, num_images=NUM.value, seed=SEED.value,
                                resolution=shipped.config.resolution, cache_dir=cache)
  except (DataError, ValueError) as e:
    fail(str(e))
  grid = evaluate.generate_samples(shipped, evaluate.sample_latents(shipped, 64, SEED.value),
                                   SEED.value)
  save_grid(os.path.join(out, 'samples.png'), grid, ncol=8)
  cfg = shipped.config
  hp = run_cfg['hparams']
  time_ = export.training_time(WORKDIR.value, up_to_step=step)
  if SECONDS.value is not None:
    time_ = {'seconds': SECONDS.value, 'processes': None, 'segments': None}
  elif not time_['processes']:
    fail(f'{WORKDIR.value}/logs holds no logged steps (TensorBoard events or '
         'scalars.jsonl) to time the run: pass --training_seconds=S (its wall time)')
  command = f'python launch/main.py --config={TRAIN_CONFIG.value} --workdir=WORKDIR'
  if stages:
    command += f" --config.model.checkpoint={run_cfg['model']['checkpoint']}"
  if TRAIN.value:
    command += ' --config.data.source=FOLDER'
  card = {
      'name': NAME.value or os.path.basename(out), 'out': os.path.relpath(out),
      'command': 'python launch/release_model.py ' + _shown_args(sys.argv[1:]),
      'date': datetime.date.today().isoformat(), 'step': step,
      'hardware': HARDWARE.value or _default_hardware(),
      'data': {'train': _shown(train), 'train_count': evaluate.ImageSource(train, cfg.resolution).count,
               'reference': _shown(reference)},
      'architecture': {'resolution': cfg.resolution, 'z_dim': cfg.z_dim, 'w_dim': cfg.w_dim,
                       'n_mlp': cfg.n_mlp, 'widths': list(cfg.g_channels)},
      'params': {k: _params(v['params']) for k, v in nets.items()},
      'storage': ', '.join(f'{n} float16' for n in FLOAT16.value) or 'all float32',
      'size_mb': round(_dir_mb(out), 2),
      'hparams': {k: hp[k] for k in ('batch_size', 'lr', 'r1_gamma', 'ema_beta')},
      'training': {'steps': step, 'images_seen': step * hp['batch_size'],
                   'config': TRAIN_CONFIG.value,
                   'command': command,
                   'note': TRAINING_NOTE.value, **time_},
      'num_samples': NUM.value, 'seed': SEED.value,
      'model_scores': _paths_shown(evaluate.json_ready(scores)),
      'floor_scores': _paths_shown(floor),
  }
  if stages:
    card['stages'] = stages
    everything = stages + [card['training']]
    card['total'] = {k: sum(s[k] for s in everything)
                     for k in ('steps', 'images_seen', 'seconds')}
  write_text(os.path.join(out, 'card.json'), json.dumps(card, indent=2), setting='--out')
  write_text(os.path.join(out, 'MODEL_CARD.md'), card_text(card), setting='--out')
  print(f'wrote {out} ({card["size_mb"]:.1f} MB): MODEL_CARD.md, card.json, samples.png')


if __name__ == '__main__':
  run_main(main)
