#!/usr/bin/env bash
# Makes the repository beside this script with the pullback binary given, so that later builds are tested against
# a repository an earlier build wrote (Tests/CommandLineTests/OlderRepositoryTests.swift). A throwaway TCG guest with
# two small qcow2 disks, through libvirt's embedded driver; five points: a full, an incremental, one checked against
# its source, a synthetic full (the chain reached --max-chain) and an incremental over it, with guest writes between
# them. expected.sha256 holds, per point and disk, the SHA-256 of the disk as the guest had it then.
#
#   Tests/Fixtures/older-repository/make.sh PULLBACK_BINARY
#
# The repository in git was made by the build of commit a61c77e.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(mktemp -d /tmp/pbfix-XXXXXX)
uri="qemu:///embed?root=$root"
vm=older-fixture
virsh_() { virsh -q -c "$uri" "$@" 2>/dev/null; }
cleanup() {
  virsh_ destroy "$vm" >/dev/null || true
  virsh_ undefine "$vm" --checkpoints-metadata >/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
cd "$root"
mkdir etc
printf '%s\n' 'user = "root"' 'group = "root"' 'security_driver = "none"' 'dynamic_ownership = 0' \
  'remember_owner = 0' 'stdio_handler = "file"' >etc/qemu.conf
qemu-img create -q -f qcow2 vda.qcow2 4M
qemu-img create -q -f qcow2 vdb.qcow2 2M
qemu-img create -q -f raw ref-vda.raw 4M
qemu-img create -q -f raw ref-vdb.raw 2M
cat >vm.xml <<XML
<domain type='qemu'>
  <name>$vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$root/vda.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$root/vdb.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <memballoon model='none'/>
  </devices>
</domain>
XML
virsh_ define vm.xml >/dev/null
virsh_ start "$vm" >/dev/null
# A write through the guest's own virtio device (which marks the dirty bitmaps), mirrored into a raw reference.
guest_write() {
  local disk=$1 command=$2 device
  device=$([[ $disk == vda ]] && echo virtio-disk0 || echo virtio-disk1)
  virsh_ qemu-monitor-command "$vm" --hmp "qemu-io -d /machine/peripheral/$device/virtio-backend \"$command\"" >/dev/null
  qemu-io -f raw -c "$command" "ref-$disk.raw" >/dev/null
}
point=0
backup() {
  point=$((point + 1))
  "$bin" backup "$vm" --repo repo --connect "$uri" --quiet --no-progress "$@"
  for disk in vda vdb; do echo "$point $disk $(sha256sum <"ref-$disk.raw" | cut -d' ' -f1)"; done >>expected.sha256
}
"$bin" init --repo repo >/dev/null
guest_write vda "write -P 0x11 0 1M"
guest_write vdb "write -P 0x22 64k 192k"
backup
guest_write vda "write -P 0x33 1536k 128k"
guest_write vda "write -z 256k 64k"
guest_write vdb "write -P 0x44 65535 3"
backup
guest_write vda "write -P 0x55 4194303 1"
guest_write vdb "write -P 0x66 1M 256k"
backup --check-source
guest_write vda "write -P 0x77 2M 64k"
backup --max-chain 3
guest_write vdb "write -z 64k 64k"
guest_write vda "write -P 0x88 3M 100k"
backup
rm -rf "$here/repo" "$here/expected.sha256"
cp -a repo "$here/repo"
cp expected.sha256 "$here/expected.sha256"
"$bin" list --repo "$here/repo"
