"""it-server: a kustomize directory for Kubernetes, applied by Argo CD or Flux."""

from targets.it_server.renderer import TARGET_CLASS, render

__all__ = ["TARGET_CLASS", "render"]
