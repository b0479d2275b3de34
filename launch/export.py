"""Export a model to rosinality/stylegan2-pytorch's `.pt` format (no PyTorch needed).

  python launch/export.py --checkpoint=runs/cdc_sketch --out=cdc_sketch.pt
  python launch/export.py --checkpoint=models/anime64 --out=anime64.pt --nets=g_ema
  python launch/export.py --checkpoint=network-snapshot.pkl --out=model.pt

--checkpoint is anything launch/eval.py reads: a training workdir (its newest
checkpoint, or --step), an fsig-jax model directory, a rosinality .pt or an
ada-pytorch .pkl. The file holds `g_ema`, `latent_avg` (G_ema's w_avg) and, when
the model has them, `g` and `d` (rosinality's Generator / Discriminator
state dicts, every tensor and buffer), written like torch.save (zip format),
so `torch.load(path, weights_only=True)` and rosinality's generate.py read it.
"""
import os

from absl import flags

from fsig_jax.convert import rosinality, torch_writer
from fsig_jax.engine import export
from fsig_jax.errors import FsigError
from fsig_jax.utils.cli import fail, run_main
from fsig_jax.utils.logs import quiet_logs

CKPT = flags.DEFINE_string('checkpoint', None, 'a training workdir, fsig-jax model directory, '
                           '.pt or .pkl', required=True)
STEP = flags.DEFINE_integer('step', None, 'for a workdir: the checkpoint step (default newest)')
OUT = flags.DEFINE_string('out', None, 'the .pt file to write', required=True)
NETS = flags.DEFINE_list('nets', ['g_ema', 'g', 'd'], 'what to write (g_ema is always '
                         'written; g and d when the model has them)')
OVERWRITE = flags.DEFINE_bool('overwrite', False, 'replace --out if it exists')
_NET_NAMES = {'g_ema': 'G_ema', 'g': 'G', 'd': 'D'}


def main(argv):
  del argv
  quiet_logs()
  unknown = sorted(set(NETS.value) - set(_NET_NAMES))
  if unknown:
    fail(f'--nets: unknown {unknown}; choose from g_ema, g, d')
  if os.path.exists(OUT.value) and not OVERWRITE.value:
    fail(f'--out {OUT.value} exists; pass --overwrite to replace it')
  path = CKPT.value
  try:
    if not os.path.exists(path):
      raise FsigError(f'--checkpoint {path} does not exist')
    bundle = export.load_model_or_workdir(path, STEP.value)
    ckpt = rosinality.export_checkpoint(bundle, [_NET_NAMES[n] for n in NETS.value])
  except FsigError as e:
    fail(str(e))
  os.makedirs(os.path.dirname(os.path.abspath(OUT.value)), exist_ok=True)
  torch_writer.save(ckpt, OUT.value)
  cfg = bundle.config
  nets = [n for n in ('g_ema', 'g', 'd') if n in ckpt]
  print(f'wrote {OUT.value}: {cfg.resolution}px StyleGAN2 ({", ".join(nets)}, latent_avg), '
        f'style_dim {cfg.w_dim}, n_mlp {cfg.n_mlp}, G widths {cfg.g_channels}')
  cm = rosinality.channel_multiplier(cfg)
  if cm is not None and cfg.w_dim == 512 and cfg.n_mlp == 8:
    print(f'rosinality: python generate.py --size {cfg.resolution} --channel_multiplier {cm} '
          f'--ckpt {OUT.value}')
  else:
    print(f'rosinality: build Generator({cfg.resolution}, {cfg.w_dim}, {cfg.n_mlp}) with these '
          'widths (they are not its default table, or generate.py\'s fixed latent 512 / n_mlp 8 '
          'differ), then load_state_dict(ckpt["g_ema"])')


if __name__ == '__main__':
  run_main(main)
