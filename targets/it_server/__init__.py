"""it-server: a kustomize directory for Kubernetes, applied by Argo CD or Flux."""

from compiler.bundle.activation import Activation
from compiler.render.platforms import application_host
from compiler.render.plugins import ClassPlugin
from targets.it_server.profile import ItServerProfile
from targets.it_server.renderer import MODEL_BY_REFERENCE, TARGET_CLASS, render

PLUGIN = ClassPlugin(
    name=TARGET_CLASS,
    render=render,
    activation=Activation.CLUSTER,  # publish writes clusters/<device>/ for the GitOps controller
    validate=application_host,
    model_by_reference=MODEL_BY_REFERENCE,
    profile=ItServerProfile,
)

__all__ = ["MODEL_BY_REFERENCE", "PLUGIN", "TARGET_CLASS", "render"]
