"""House constructs: the Python function, the common layer, the HTTP API, the database."""
