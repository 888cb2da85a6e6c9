"""Storage: the per-app database, the models and the migrations that make their schema."""
