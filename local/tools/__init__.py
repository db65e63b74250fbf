"""Local stand-ins for the shared per-student tools (run by the local stack and the tests)."""
