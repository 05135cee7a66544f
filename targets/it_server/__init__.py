"""it-server: a kustomize directory for Kubernetes, applied by Argo CD or Flux."""

from targets.it_server.renderer import MODEL_BY_REFERENCE, TARGET_CLASS, render

__all__ = ["MODEL_BY_REFERENCE", "TARGET_CLASS", "render"]
