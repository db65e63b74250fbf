"""The ApraNova CDK app: ``python -m cdk.app`` from the repository root (see cdk.json)."""
