"""The tools API function: a student's access to the tools provisioned for their track."""
