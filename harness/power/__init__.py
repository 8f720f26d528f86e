"""Energy estimates from a platform's power model."""
