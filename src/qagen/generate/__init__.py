"""Generate: prompts + measured metadata → LLM (JSON-constrained) → validated, grounded QA."""
