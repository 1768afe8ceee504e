"""Code execution through Judge0 (not built yet, see issue 7)."""
