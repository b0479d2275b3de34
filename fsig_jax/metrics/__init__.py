"""fsig_jax.metrics."""
