"""Policies and consent: the documents in force, accepting them, the history of a person's consents."""
