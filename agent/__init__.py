"""The device agent: fetch → verify → stage → activate → health → rollback → report.

Imports nothing from the compiler but `compiler.bundle` (the bundle format and signatures), and
never onnxruntime: models are loaded only in the health-check subprocess.
"""
