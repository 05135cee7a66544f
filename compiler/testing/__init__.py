"""`takt test`: TestSuites run with onnxruntime, judged statistically."""
