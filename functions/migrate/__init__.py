"""Schema migrations, the catalogue seed and the course datasets, run at deploy by a CDK Trigger."""
