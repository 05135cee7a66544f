"""The library side of each `takt` command: a typed request in, a typed outcome (or a typed
`CommandError`) out. The CLI only parses flags into a request, calls one function here and renders.

Defaults, path and URL resolution and exit codes are decided here, never in compiler/cli/.
"""
