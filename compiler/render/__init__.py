"""Rendering: validated specs → the files of one bundle per (deployment, target), by target class."""
