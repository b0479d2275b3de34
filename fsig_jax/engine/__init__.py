"""fsig_jax.engine."""
