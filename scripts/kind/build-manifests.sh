#!/usr/bin/env bash
# Writes the node image's /kind/manifests into directory $1:
#   default-cni.yaml       scripts/kind/node/default-cni.yaml (flannel), with the local flannel image;
#   default-storage.yaml   kind's own storage manifest (defaultStorageManifest of
#                          pkg/build/nodeimage/const_storage.go in the sigs.k8s.io/kind module),
#                          with the locally built provisioner and helper images.
#   scripts/kind/build-manifests.sh OUT_DIR
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  [[ $# -eq 1 ]] || die "usage: $0 OUT_DIR"
  local kind_dir
  kind_dir=$(go_module_dir sigs.k8s.io/kind "$KIND_MODULE_VERSION")
  mkdir -p "$1"
  sed "s#FLANNEL_IMAGE#$FLANNEL_IMAGE#g" "$KIND_SCRIPTS_DIR/node/default-cni.yaml" >"$1/default-cni.yaml"
  python3 - "$kind_dir/pkg/build/nodeimage/const_storage.go" "$LOCAL_PATH_PROVISIONER_IMAGE" \
    "$LOCAL_PATH_HELPER_IMAGE" >"$1/default-storage.yaml" <<'PY' || die "cannot read defaultStorageManifest from kind's const_storage.go"
import re, sys
source, provisioner, helper = sys.argv[1:]
text = open(source).read()
manifest = re.search(r"const defaultStorageManifest = `(.*?\n)`\n", text, re.S).group(1)
manifest = manifest.replace("` + storageProvisionerImage + `", provisioner).replace("` + storageHelperImage + `", helper)
assert "`" not in manifest, "unexpected Go expression in the manifest"
sys.stdout.write(manifest)
PY
  grep -q "$LOCAL_PATH_HELPER_IMAGE" "$1/default-storage.yaml" || die "kind's storage manifest changed shape; update build-manifests.sh"
}

main "$@"
