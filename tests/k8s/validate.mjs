// Reads a JSON array of Kubernetes objects on stdin; validates each against its CRD's JSON schema
// (the schemas that @kubernetes-models generates from the Argo CD and Flux CRDs). Prints one JSON
// line per object: {"kind", "name", "ok", "error"}. Exit 0 when every object is valid, 1 otherwise.
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";
import { Kustomization } from "@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1/Kustomization";
import { GitRepository } from "@kubernetes-models/flux-cd/source.toolkit.fluxcd.io/v1/GitRepository";

const MODELS = {
  "argoproj.io/v1alpha1/Application": Application,
  "kustomize.toolkit.fluxcd.io/v1/Kustomization": Kustomization,
  "source.toolkit.fluxcd.io/v1/GitRepository": GitRepository,
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
let bad = 0;
for (const obj of JSON.parse(input)) {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  let error = null;
  if (!Model) error = `no schema for ${obj.apiVersion} ${obj.kind}`;
  else {
    try {
      new Model(obj).validate();
    } catch (e) {
      error = String(e.message || e);
    }
  }
  if (error) bad += 1;
  console.log(JSON.stringify({ kind: obj.kind, name: obj.metadata?.name, ok: !error, error }));
}
process.exit(bad ? 1 : 0);
