"""The offline demo: tiny random-weight models that need no download."""
