"""Trainer review: assigned students and their progress, the review queue, reviews."""
