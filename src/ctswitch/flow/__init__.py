"""The shared vocabulary of the pipeline: flow keys, fields, matches, actions. Pure."""
