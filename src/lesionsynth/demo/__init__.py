"""The end-to-end demo and the experiment runner."""
