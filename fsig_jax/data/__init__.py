"""fsig_jax.data."""
