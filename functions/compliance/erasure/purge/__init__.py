"""The daily purge: erases the accounts whose grace period is over (``handler.py`` is the Lambda entry,
the steps and their resumption are in ``service.py``)."""
