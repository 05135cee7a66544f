"""takt-runner: one bundle's model on live data (sources → frames → onnxruntime → outputs).

It imports from the compiler only `compiler.bundle` (the runner contract) and the shared
feature pipeline `frames`, so a device needs neither pydantic nor jinja2.
"""
