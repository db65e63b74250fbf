"""The right of access: an export of a person's data, built by the export worker, downloaded by a short-lived link."""
