"""Submissions: presigned uploads, deliverable submissions (attempts), the student's own submissions."""
