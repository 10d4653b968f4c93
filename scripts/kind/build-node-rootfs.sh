#!/usr/bin/env bash
# Builds the root file system of the kind node image in directory $1, as kind's
# images/base/Dockerfile does, from Debian packages instead of release downloads:
#   - Debian DEBIAN_SUITE with the packages of kind's base image (systemd, iptables, ...);
#   - containerd, runc and the CNI plugins from Debian sid at the pinned versions;
#   - crictl (built by build-go-tools.sh, from $3), node/unprivileged-entrypoint (the image's entrypoint
#     before kind's, see there), and the files of kind's images/base/files from
#     the sigs.k8s.io/kind module (entrypoint, containerd config, systemd units);
#   - kubeadm, kubelet and kubectl (built by build-kubernetes.sh, from $2), /kind/version and the
#     default CNI and storage manifests (build-manifests.sh) in /kind/manifests.
#   scripts/kind/build-node-rootfs.sh ROOTFS KUBE_BIN_DIR TOOLS_BIN_DIR MANIFESTS_DIR
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

#: The packages of kind's base image (images/base/Dockerfile), one group a line there.
KIND_BASE_PACKAGES=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,nfs-common,open-iscsi,e2fsprogs,bash,ca-certificates,curl,jq,procps

# Copies kind's images/base/files into the rootfs with the modes its Dockerfile gives them.
install_kind_files() {
  local root=$1 files=$2
  install -m 0755 "$files"/usr/local/bin/* "$root/usr/local/bin/"
  mkdir -p "$root/kind" "$root/LICENSES" "$root/etc/containerd" "$root/etc/default" "$root/etc/sysctl.d" \
    "$root/etc/systemd/system/kubelet.service.d"
  cp -r "$files"/kind/. "$root/kind/"
  find "$root/kind" -type f -exec chmod 0644 {} +
  chmod 0755 "$root/kind" "$root/kind/bin" "$root"/kind/bin/*
  install -m 0644 "$files"/LICENSES/* "$root/LICENSES/"
  install -m 0644 "$files"/etc/crictl.yaml "$root/etc/"
  install -m 0644 "$files"/etc/containerd/* "$root/etc/containerd/"
  install -m 0644 "$files"/etc/default/* "$root/etc/default/"
  install -m 0644 "$files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
  find "$files/etc/systemd/system" -maxdepth 1 -type f -exec install -m 0644 {} "$root/etc/systemd/system/" \;
  install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
}

# containerd, runc and the CNI plugins from sid, where kind's units and config look for them.
install_container_runtime() {
  local root=$1 debs
  debs=$root/tmp/sid-debs
  sid_download "$debs" "containerd=$CONTAINERD_DEB_VERSION" "runc=$RUNC_DEB_VERSION" \
    "containernetworking-plugins=$CNI_PLUGINS_DEB_VERSION"
  in_chroot "$root" sh -c 'dpkg -i /tmp/sid-debs/*.deb' >&2 || die "dpkg -i of the sid packages failed (output above)"
  rm -rf "$debs"
  local bin
  for bin in containerd ctr containerd-shim-runc-v2; do ln -sf "/usr/bin/$bin" "$root/usr/local/bin/$bin"; done
  mkdir -p "$root/opt/cni/bin"
  for bin in host-local loopback ptp portmap bridge; do ln -sf "/usr/lib/cni/$bin" "$root/opt/cni/bin/$bin"; done
}

configure_cni() {
  local root=$1
  # The CNI configuration of each node, written by containerd from the node's pod CIDR once the
  # kubelet knows it (the default CNI's flanneld adds the routes between nodes).
  install -m 0644 "$KIND_SCRIPTS_DIR/node/cni-template.conflist" "$root/etc/containerd/cni-template.conflist"
  cat >>"$root/etc/containerd/config.toml" <<'TOML'

[plugins."io.containerd.grpc.v1.cri".cni]
  # per-node CNI config from the node's pod CIDR (see /etc/containerd/cni-template.conflist)
  conf_template = "/etc/containerd/cni-template.conflist"
TOML
}

# The steps of the base image's RUN lines: unwanted units off, kind's units on, /sbin/init.
configure_systemd() {
  local root=$1
  find "$root/lib/systemd/system/sysinit.target.wants/" -name "systemd-tmpfiles-setup.service" -delete
  rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
    "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
    "$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$root/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$root/sbin/init"
  in_chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >&2
  in_chroot "$root" systemctl mask systemd-binfmt.service >&2
  mkdir -p "$root/etc/kubernetes/manifests"
}

main() {
  [[ $# -eq 4 ]] || die "usage: $0 ROOTFS KUBE_BIN_DIR TOOLS_BIN_DIR MANIFESTS_DIR"
  local root=$1 kube=$2 tools=$3 manifests=$4 kind_dir
  require_cmd jq
  kind_dir=$(go_module_dir sigs.k8s.io/kind "$KIND_MODULE_VERSION")
  debootstrap_rootfs "$root" "$KIND_BASE_PACKAGES"
  install_container_runtime "$root"
  # after the packages, so that kind's containerd config and units replace Debian's
  install_kind_files "$root" "$kind_dir/images/base/files"
  configure_cni "$root"
  configure_systemd "$root"
  in_chroot "$root" ctr oci spec |
    jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"$root/etc/containerd/cri-base.json"
  install -m 0755 "$tools/crictl" "$root/usr/local/bin/crictl"
  install -m 0755 "$KIND_SCRIPTS_DIR/node/unprivileged-entrypoint" "$root/usr/local/bin/unprivileged-entrypoint"
  install -m 0755 "$kube/kubeadm" "$kube/kubelet" "$kube/kubectl" "$root/usr/bin/"
  printf '%s' "$KUBERNETES_VERSION" >"$root/kind/version"
  mkdir -p "$root/kind/manifests"
  install -m 0644 "$manifests"/default-cni.yaml "$manifests"/default-storage.yaml "$root/kind/manifests/"
  slim_rootfs "$root"
}

main "$@"
