"""The right to erasure: scheduling and cancelling the deletion of an account (``routes.py``) and the
daily purge that carries it out after the grace period (``purge/``)."""
