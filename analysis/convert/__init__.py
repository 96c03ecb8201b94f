"""Model Garden (TF2, tensorflow/models) SpineNet and Mobile SpineNet checkpoints made into our state dicts."""
