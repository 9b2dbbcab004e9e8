"""Run files to metrics and pictures: the glue between the store, the analysis functions and people."""
