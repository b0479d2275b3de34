"""fsig_jax.models."""
