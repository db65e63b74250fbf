"""The stack's domains (payments, compliance, provisioning, learning): each adds its functions' jobs,
settings and grants to the stack, in the stack's own scope (so every logical id stays as it was)."""
