#!/usr/bin/env bash
# System tools some tests use with real output: find them, install what is missing when we can
# (root with apt-get), otherwise say which tests will be skipped. Never fails the build itself.
set -u
need=()
command -v git >/dev/null || need+=(git)
command -v gcc >/dev/null || command -v cc >/dev/null || need+=(gcc)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v kubectl >/dev/null || need+=(kubectl)
command -v localedef >/dev/null || need+=(locales)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)  # the runner's MQTT tests
command -v docker-registry >/dev/null || need+=(docker-registry)  # the OCI model tests' registry (127.0.0.1 only)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v chromium >/dev/null || need+=(chromium)  # the fleet page is tested as a browser renders it
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "tools: installing ${need[*]}"
  apt-get update -qq >/dev/null 2>&1
  for pkg in "${need[@]}"; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 \
      || { [ "$pkg" = kubectl ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null 2>&1; } \
      || echo "tools: could not install $pkg"
  done
fi
# Node packages for the tests' Argo CD / Flux CRD schema check (locked in tests/k8s/package-lock.json)
if command -v npm >/dev/null && [ ! -d tests/k8s/node_modules ]; then
  npm ci --prefix tests/k8s --silent --no-audit --no-fund >/dev/null 2>&1 || echo "tools: npm ci in tests/k8s failed"
fi
[ ${#need[@]} -eq 0 ] && echo "tools: git, gcc, systemd-analyze, kubectl, localedef, sshd, mosquitto, docker-registry, htpasswd, chromium found"
for t in git gcc systemd-analyze kubectl sshd mosquitto docker-registry htpasswd chromium node; do
  [ "$t" = sshd ] && [ -x /usr/sbin/sshd ] && continue
  [ "$t" = mosquitto ] && [ -x /usr/sbin/mosquitto ] && continue
  command -v "$t" >/dev/null || echo "tools: $t is missing here: the tests that need it are skipped (see the pytest summary)"
done
exit 0
