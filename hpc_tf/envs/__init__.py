"""Job environments (`environment:`): venv/conda/uv builds under a lock, cached and shared (`build`), listed and
pruned (`cache`); what an interpreter has (`interpreters`)."""
