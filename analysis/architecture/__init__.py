"""Structure views: receptive fields and paths, the scale profile, the block-type what-if."""
