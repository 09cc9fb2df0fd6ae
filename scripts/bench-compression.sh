# shellcheck shell=bash
# The compression half of scripts/bench, sourced by it: a second TCG guest under bench's private libvirtd whose one
# disk (vdb) holds a real file system (`mke2fs -t ext4 -d /usr/share`), so that compression has something to
# shrink. Its own guest, not a second disk of bench's, so the VM rows back up, export and restore what they did
# before. Full backups with each compression, and into encrypted repositories (zstd at its default level, and no
# compression), `qemu-img convert -c` and virtnbdbackup --compress from the same pull-mode export, and restores of a
# compressed, an uncompressed and an encrypted point. Uses bench's and bench-vm.sh's variables
# (work, bin, size_b, vm_uri, vm_root, vm_peer) and helpers (row, timed, json_field, vm_virsh, vnb).

z_vm=pbbenchz
z_cap=$((2 << 30)) # a larger file system adds only zeros to read
z_size=0
z_size_note=
z_allocated=0
z_zstd_readable=1
z_out=0
z_export=
declare -A z_outs

# How large the file system must be to hold /usr/share (the blocks its files take here, ext4's own and some room).
z_needed_bytes() { du -s -B1 /usr/share 2>/dev/null | awk '{ printf "%.0f\n", $1 * 1.3 + 67108864 }'; }

# The free space the section needs beside the rest: the file system's raw and qcow2 copies, seven repositories
# (none, zstd:1, zstd:3, deflate, the two encrypted ones and virtnbdbackup's), two qemu-img outputs and one restored
# disk, as if none shrank.
z_space_mib() { echo $((12 * $(du -sb /usr/share | cut -f1) >> 20)); }

# The guest's disk: an ext4 file system of /usr/share, --size capped at 2 GiB and raised to what /usr/share needs.
z_setup() {
  local needed
  needed=$(z_needed_bytes)
  z_size=$((size_b < z_cap ? size_b : z_cap))
  if ((z_size < needed)); then
    z_size=$(((needed + (1 << 20) - 1) >> 20 << 20))
    z_size_note="raised from --size to hold /usr/share"
  elif ((size_b > z_cap)); then
    z_size_note="--size capped at $((z_cap >> 30)) GiB"
  else
    z_size_note="--size"
  fi
  log "making a $((z_size >> 20)) MiB ext4 file system of /usr/share for the compression guest"
  truncate -s "$z_size" "$work/fs.raw"
  mke2fs -q -t ext4 -d /usr/share -F "$work/fs.raw" "$((z_size >> 10))k" || die "mke2fs -d /usr/share failed"
  qemu-img convert -f raw -O qcow2 "$work/fs.raw" "$work/vdb.qcow2"
  cat >"$work/z-vm.xml" <<XML
<domain type='qemu'>
  <name>$z_vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$work/vdb.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <memballoon model='none'/>
  </devices>
</domain>
XML
  cat >"$work/z-backup.xml" <<XML
<domainbackup mode='pull'>
  <server transport='unix' socket='$vm_root/z-export.sock'/>
  <disks><disk name='vdb' backup='yes' type='file'><scratch file='$work/z-scratch.qcow2'/></disk></disks>
</domainbackup>
XML
  vm_virsh define "$work/z-vm.xml" >/dev/null
  vm_virsh start "$z_vm" >/dev/null
  z_export="nbd+unix:///vdb?socket=$vm_root/z-export.sock"
  z_job_begin
  z_allocated=$(nbdinfo --map --totals "$z_export" | awk '$3 == 0 { s += $1 } END { printf "%.0f\n", s }')
  z_job_end
  z_probe_zstd
  # The encrypted rows' raw key: 32 bytes, the first a NUL so that they are never all printable text.
  { printf '\0'; head -c 31 /dev/urandom; } >"$work/z-key.bin"
  chmod 600 "$work/z-key.bin"
}

# Whether this build reads zstd clusters (an older reader refuses the image's header): a small qcow2 that qemu-img
# compressed with zstd, read by `pullback image-info`. Without it there are no restore rows of zstd points.
z_probe_zstd() {
  local probe=$work/z-probe.qcow2
  qemu-img create -q -f qcow2 -o compression_type=zstd "$probe" 4M
  qemu-io -f qcow2 -c 'write -c -P 0x61 0 64k' "$probe" >/dev/null
  "$bin" image-info "$probe" >/dev/null 2>&1 || z_zstd_readable=0
  rm -f "$probe"
}

z_job_begin() {
  rm -f "$vm_root/z-export.sock"
  vm_virsh backup-begin "$z_vm" "$work/z-backup.xml" >/dev/null
}
z_job_end() { vm_virsh domjobabort "$z_vm" >/dev/null; }

# The compressions of the backup rows, by row id; the rows ending in -enc back up into an encrypted repository.
declare -A z_compress=([z-none]=none [z-zstd1]=zstd:1 [z-zstd3]=zstd:3 [z-deflate]=deflate [z-none-enc]=none
  [z-zstd-enc]=zstd)

# z_key_options ID: sets z_key to the options that open the row's repository (its key; none for a plain one).
z_key=()
z_key_options() {
  z_key=()
  [[ $1 != *-enc ]] || z_key=(--key-file "$work/z-key.bin")
}

z_rows() {
  local id
  for id in z-none z-zstd1 z-zstd3 z-deflate; do
    row "$id" "\`pullback backup --level full --disk vdb --compress ${z_compress[$id]}\`"
  done
  for id in z-zstd-enc z-none-enc; do
    row "$id" "\`pullback backup --level full --disk vdb --compress ${z_compress[$id]}\` into an encrypted repository"
  done
  row z-null '`nbdcopy` → `null:` (what the export can give)'
  row z-qemu '`qemu-img convert -c -O qcow2 -o compression_type=zstd`, then `sync`'
  row z-qemu-w '`qemu-img convert -c -W -m 8 -O qcow2 -o compression_type=zstd`, then `sync`'
  [[ -z $vm_peer ]] || row z-vnb '`virtnbdbackup -l full --compress` (lz4), then `sync`'
  row z-restore-none '`pullback restore` of the `none` point → qcow2, then `sync`'
  if ((z_zstd_readable)); then
    row z-restore-zstd1 '`pullback restore` of the `zstd:1` point → qcow2, then `sync`'
    row z-restore-zstd3 '`pullback restore` of the `zstd:3` point → qcow2, then `sync`'
    row z-restore-zstd-enc '`pullback restore` of the encrypted `zstd` point → qcow2, then `sync`'
  fi
  row z-restore-none-enc '`pullback restore` of the encrypted uncompressed point → qcow2, then `sync`'
}

# z_run_row ID: sets secs, cpu, rss_kib, vm_bytes (the data read: the disk's allocation) and z_out (the bytes the
# row wrote: the repository, qemu-img's image, virtnbdbackup's folder or the restored image).
z_run_row() {
  local out=$work/z-out.qcow2 repo
  vm_bytes=$z_allocated
  case $1 in
    z-none | z-zstd1 | z-zstd3 | z-deflate | z-none-enc | z-zstd-enc)
      repo=$work/z-repo-${1#z-}
      rm -rf "$repo"
      z_key_options "$1"
      "$bin" init --repo "$repo" ${z_key[0]:+--encrypt} "${z_key[@]}" >/dev/null
      vm_drop_checkpoints "$z_vm"
      sync
      timed nosync "$bin" backup "$z_vm" --repo "$repo" --level full --disk vdb --compress "${z_compress[$1]}" \
        --connect "$vm_uri" --json --no-progress "${z_key[@]}"
      vm_bytes=$(json_field bytes_read)
      z_out=$(du -sb "$repo" | cut -f1)
      ;;
    z-null)
      z_job_begin
      timed nosync nbdcopy "$z_export" null:
      z_job_end
      z_out=0
      ;;
    z-qemu | z-qemu-w)
      local extra=()
      [[ $1 == z-qemu ]] || extra=(-W -m 8)
      rm -f "$out"
      sync
      z_job_begin
      timed sync qemu-img convert -c "${extra[@]}" -f raw -O qcow2 -o compression_type=zstd "$z_export" "$out"
      z_job_end
      z_out=$(stat -c %s "$out")
      ;;
    z-vnb)
      rm -rf "$work/z-vnb"
      vm_drop_checkpoints "$z_vm"
      sync
      vnb virtnbdbackup
      timed sync "${vnb[@]}" -d "$z_vm" -l full --compress -o "$work/z-vnb" --scratchdir "$work" \
        -f "$vm_root/z-vnb.sock"
      z_out=$(du -sb "$work/z-vnb" | cut -f1)
      ;;
    z-restore-*)
      rm -rf "$work/z-restored"
      sync
      z_key_options "$1"
      timed sync "$bin" restore --repo "$work/z-repo-${1#z-restore-}" "$z_vm" --to "$work/z-restored" --no-progress \
        "${z_key[@]}"
      z_out=$(stat -c %s "$work/z-restored/vdb.qcow2")
      ;;
  esac
}

# After the first run of a row: what it wrote must read as the file system, and a point must record its compression;
# an encrypted point's image must be sealed, and reads as the file system once restored.
z_check_row() {
  local image repo=$work/z-repo-${1#z-}
  z_key_options "$1"
  case $1 in
    z-none | z-zstd1 | z-zstd3 | z-deflate | z-none-enc | z-zstd-enc)
      image=$(find "$repo" -name 'vdb*.qcow2' -type f | head -n 1)
      [[ -n $image ]] || die "$1: no image of vdb in the repository"
      if [[ $1 == *-enc ]]; then
        z_check_sealed "$1" "$repo" "$image"
      else
        qemu-img check -q "$image" || die "$1: qemu-img check found errors in the point's image"
        qemu-img compare -q -f qcow2 -F raw "$image" "$work/fs.raw" || die "$1: the point's image differs from the disk"
      fi
      "$bin" list --repo "$repo" --json "${z_key[@]}" >"$work/z-list.json" || die "$1: pullback list failed"
      case $1 in
        z-none | z-none-enc) ! grep -q '"compression" *: *"[a-z]' "$work/z-list.json" ||
          die "$1: the point records a compression" ;;
        *) grep -q "\"compression\" *: *\"${z_compress[$1]%%:*}" "$work/z-list.json" ||
          die "$1: pullback list does not show ${z_compress[$1]}: $(cat "$work/z-list.json")" ;;
      esac
      [[ $1 != *-enc ]] || grep -q '"encrypted" *: *true' "$work/z-list.json" ||
        die "$1: pullback list does not show the point encrypted: $(cat "$work/z-list.json")"
      ;;
    z-qemu | z-qemu-w)
      qemu-img compare -q -f qcow2 -F raw "$work/z-out.qcow2" "$work/fs.raw" || die "$1: qemu-img's image differs from the disk" ;;
    z-restore-*)
      qemu-img compare -q -f qcow2 -F raw "$work/z-restored/vdb.qcow2" "$work/fs.raw" ||
        die "$1: the restored disk differs from the guest's disk" ;;
  esac
}

# z_check_sealed ID REPO IMAGE: the encrypted point's image is a sealed object, and the point restores as the disk.
z_check_sealed() {
  [[ $(head -c 8 "$3") == PBSEAL01 ]] || die "$1: the point's image is not sealed"
  rm -rf "$work/z-check"
  "$bin" restore --repo "$2" "$z_vm" --to "$work/z-check" --no-progress "${z_key[@]}" >/dev/null ||
    die "$1: the encrypted point does not restore"
  qemu-img compare -q -f qcow2 -F raw "$work/z-check/vdb.qcow2" "$work/fs.raw" ||
    die "$1: the encrypted point differs from the disk"
  rm -rf "$work/z-check"
}

# z_table FROM TO: the rows ids[FROM..TO-1], with the bytes each wrote.
z_table() {
  local i id med lo hi
  echo "| what | median s | min–max s | user + sys s | CPU s/GiB | MiB/s of data | written (MiB) | written / data | peak RSS (MiB) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for ((i = $1; i < $2; i++)); do
    id=${ids[$i]}
    read -r med lo hi < <(stats "${times[$id]}")
    awk -v l="${labels[$i]}" -v m="$med" -v lo="$lo" -v hi="$hi" -v u="$(stats "${users[$id]}" | cut -d' ' -f1)" \
      -v s="$(stats "${syss[$id]}" | cut -d' ' -f1)" -v g="$(cpu_per_gib "$id")" -v b="${bytes[$id]}" \
      -v o="${z_outs[$id]}" -v k="${rss[$id]}" 'BEGIN {
      w = o > 0 ? sprintf("%.1f | %.3f", o / 1048576, o / b) : "– | –"
      printf "| %s | %.2f | %.2f–%.2f | %.2f + %.2f | %.2f | %.0f | %s | %.0f |\n", l, m, lo, hi, u, s, g, b / 1048576 / m, w, k / 1024 }'
  done
}

# z_bytes_ratio LABEL A B TARGET: what A wrote over what B wrote.
z_bytes_ratio() {
  awk -v l="$1" -v a="${z_outs[$2]}" -v b="${z_outs[$3]}" -v t="$4" \
    'BEGIN { printf "- %s: %.3fx (%.1f / %.1f MiB; target: %s)\n", l, a / b, a / 1048576, b / 1048576, t }'
}

# z_report FROM TO: the section's note, table and the issue's ratios for zstd:1 and zstd:3.
z_report() {
  echo
  echo "Compression: a second TCG guest under the same libvirtd, one virtio disk (\`vdb\`): a $((z_size >> 20)) MiB" \
    "($z_size_note) ext4 file system made by \`mke2fs -t ext4 -d /usr/share\` ($((z_allocated >> 20)) MiB allocated)," \
    "read through a full pull-mode export (\`virsh backup-begin\`, unix socket; the job's start and end are not timed" \
    "for the qemu-img rows, pullback's and virtnbdbackup's rows include their own job). Each backup run starts a new" \
    "repository; written: the repository's bytes (\`du -sb\`), qemu-img's image, virtnbdbackup's folder, the" \
    "restored image (uncompressed); written / data: over the disk's allocated bytes. In the first run every point's" \
    "image passes \`qemu-img check\` and compares identical with the disk, \`pullback list --json\` shows its" \
    "compression, and qemu-img's images and the restored disks compare identical with it. The encrypted rows" \
    "(\`init --encrypt\` with a raw 32-byte key file, \`--key-file\` on every command) are checked the same way," \
    "except that their sealed images are compared with the disk once restored."
  ((z_zstd_readable)) || echo "(This build's reader refuses zstd images, so there are no restore rows of zstd points.)"
  [[ -n $vm_peer ]] || echo "(No virtnbdbackup row: give --peer-virtnbdbackup.)"
  echo
  z_table "$1" "$2"
  echo
  local level id
  for level in 1 3; do
    id=z-zstd$level
    [[ -z $vm_peer ]] || z_bytes_ratio "zstd:$level repository / virtnbdbackup lz4 output, bytes" "$id" z-vnb 'at most 1x'
    z_bytes_ratio "zstd:$level repository / qemu-img zstd qcow2, bytes" "$id" z-qemu 'at most 1.05x'
    ratio "zstd:$level full / uncompressed full, time" "$id" z-none 'at most 1.3x'
    ratio "zstd:$level full / \`qemu-img convert -c\`, time" "$id" z-qemu 'at most 1x'
    ratio "zstd:$level full / \`qemu-img convert -c -W -m 8\`, time" "$id" z-qemu-w 'for reference'
    if ((z_zstd_readable)); then
      ratio "restore of the zstd:$level point / of the uncompressed point, time" "z-restore-zstd$level" z-restore-none \
        'at most 1.3x'
    fi
  done
  z_bytes_ratio 'deflate repository / qemu-img zstd qcow2, bytes' z-deflate z-qemu 'for reference'
  ratio 'deflate full / uncompressed full, time' z-deflate z-none 'for reference'
  cpu_ratio 'encrypted zstd full / zstd:3 full (zstd at its default level), CPU s/GiB' z-zstd-enc z-zstd3 'at most 1.1x'
  cpu_ratio 'encrypted uncompressed full / uncompressed full, CPU s/GiB' z-none-enc z-none 'at most 1.1x'
  ratio 'encrypted zstd full / zstd:3 full, time' z-zstd-enc z-zstd3 'for reference'
  ratio 'encrypted uncompressed full / uncompressed full, time' z-none-enc z-none 'for reference'
  if ((z_zstd_readable)); then
    cpu_ratio 'restore of the encrypted zstd point / of the zstd:3 point, CPU s/GiB' z-restore-zstd-enc \
      z-restore-zstd3 'for reference'
  fi
  cpu_ratio 'restore of the encrypted uncompressed point / of the uncompressed point, CPU s/GiB' z-restore-none-enc \
    z-restore-none 'for reference'
}
