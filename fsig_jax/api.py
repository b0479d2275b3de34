"""The programmatic entry points of fsig-jax."""
from fsig_jax.convert.errors import CheckpointError, UnsafePickleError
from fsig_jax.convert.load import load_bundle, load_pretrained, save_bundle
from fsig_jax.models.bundle import MissingNetworkError, ModelBundle
from fsig_jax.models.config import StyleGAN2Config, ada_channels, rosinality_channels

__all__ = [
    'CheckpointError', 'MissingNetworkError', 'ModelBundle', 'StyleGAN2Config',
    'UnsafePickleError', 'ada_channels', 'load_bundle', 'load_pretrained',
    'rosinality_channels', 'save_bundle',
]
