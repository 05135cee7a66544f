"""Rollouts: which devices get a changed Deployment's new bundles when, decided from signed reports.

`select` picks a step's devices, `state` is the signed record on the deploy branch, `plan` is what
publish assigns, `gate` judges reports against a step's gate, `promote` commits the decisions.
"""
