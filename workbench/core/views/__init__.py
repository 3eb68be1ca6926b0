"""Read models for screens and the CLI: every query a surface needs, so no SQL lives in the UI."""
