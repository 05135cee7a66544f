"""Built-in target classes, one folder each: renderer, templates, default profile."""
