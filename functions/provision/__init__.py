"""Provisioning: the enrollment and deprovision workflows and the per-student tools."""
