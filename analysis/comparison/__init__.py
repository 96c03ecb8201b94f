"""Side-by-side comparison, the papers' published figures, and text reports."""
