"""The daily retention sweep: deletes what has outlived its retention policy (``handler.py`` is the
Lambda entry, what each policy governs is in ``service.py``)."""
