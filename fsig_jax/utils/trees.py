"""Small pytree helpers shared by trainers and methods."""
import jax


def ema(average, new, beta):
  """Exponential moving average of a pytree: new + (average - new) * beta.

  rosinality/stylegan2-pytorch train.py `accumulate` (par1 * decay + par2 *
  (1 - decay), written in this form); every EMA in fsig-jax (G_ema, RICK's
  D_ema, AdAM's probing EMA, ProGAN's G smoothing) is this one function.
  """
  return jax.tree.map(lambda e, p: p + (e - p) * beta, average, new)
