# shellcheck shell=bash
# The VM half of scripts/bench, sourced by it: a running TCG guest under a private libvirtd, its disk read
# through a pull-mode backup export, whole-VM backups and restores, and optionally virtnbdbackup on the same
# guest. Uses bench's variables (work, bin, chunk, pieces, stride) and its helpers (row, timed, json_field).
#
# Why a private libvirtd and not the embedded driver (qemu:///embed): there each virsh call is its own
# process that reconnects to the running guest, and a pull job ended by one process (domjobabort) leaves
# the next one's reconnect holding the domain's lock for 30 s and QEMU's NBD server still running, so the
# next backup-begin fails. A daemon keeps one view of the guest for virsh, pullback and virtnbdbackup alike.
# It runs as the tests run theirs (Tests/CommandLineTests/TestHarness/LibvirtDaemon.swift): in its own mount
# namespace, with /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt
# bound to folders of ours, so the machine's own libvirt is never touched.

vm=pbbench
vm_root=
vm_uri=
vm_tcp_uri=
vm_peer=
vm_writes_done=0
vm_daemon_pid=

# virsh on the private daemon; its stderr is shown only on failure.
vm_virsh() {
  if ! virsh -q -c "$vm_uri" "$@" >"$work/virsh.out" 2>"$work/virsh.err"; then
    grep -v ': info :\|: warning :' "$work/virsh.err" >&2 || true
    die "virsh $1 failed"
  fi
  cat "$work/virsh.out"
}

vm_cleanup() {
  s3_stop
  [[ -n $vm_root ]] || return 0
  local pid i guest
  if [[ -n $vm_daemon_pid ]]; then
    # Every guest of ours (bench-compression.sh's too): QEMU outlives a libvirtd that ends.
    for guest in "$vm" ${z_vm:+"$z_vm"}; do
      virsh -q -c "$vm_uri" destroy "$guest" >/dev/null 2>&1 || true
      virsh -q -c "$vm_uri" undefine "$guest" --checkpoints-metadata >/dev/null 2>&1 || true
    done
    for pid in "$vm_daemon_pid" "$(cat "$vm_root/virtlogd.pid" 2>/dev/null)"; do
      [[ -n $pid ]] || continue
      kill "$pid" 2>/dev/null || continue
      for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    done
  fi
  rm -rf "$vm_root"
}

# A CA, a server certificate for 127.0.0.1 and a client certificate in $vm_root/pki/{server,client}, as qemu's
# backup_tls_x509_cert_dir and libnbd's tls-certificates= folder name them.
vm_make_certificates() {
  local pki=$vm_root/pki role ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  mkdir -p "$pki/server" "$pki/client"
  openssl req -x509 "${ec[@]}" -keyout "$pki/ca-key.pem" -out "$pki/ca-cert.pem" -days 2 -subj /CN=bench-ca \
    -addext basicConstraints=critical,CA:TRUE 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$pki/server.ext"
  printf 'extendedKeyUsage=clientAuth\n' >"$pki/client.ext"
  for role in server client; do
    openssl req "${ec[@]}" -keyout "$pki/$role/$role-key.pem" -out "$pki/$role.csr" -subj /CN=127.0.0.1 2>/dev/null
    openssl x509 -req -in "$pki/$role.csr" -CA "$pki/ca-cert.pem" -CAkey "$pki/ca-key.pem" -CAcreateserial \
      -days 2 -extfile "$pki/$role.ext" -out "$pki/$role/$role-cert.pem" 2>/dev/null
    cp "$pki/ca-cert.pem" "$pki/$role/"
  done
}

# A libvirtd of our own (see the top of this file), also on TCP 127.0.0.1 with TLS backup exports for the remote
# row; sets vm_uri and vm_tcp_uri once it answers.
vm_start_daemon() {
  local folder script="set -e" i port=$((20000 + RANDOM % 30000))
  for folder in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
    mkdir -p "$vm_root/${folder%%:*}"
    script+=$'\n'"mkdir -p ${folder#*:}; mount --bind $vm_root/${folder%%:*} ${folder#*:}"
  done
  script+=$'\n'"virtlogd -p $vm_root/virtlogd.pid &"$'\n'"exec libvirtd --listen -p $vm_root/libvirtd.pid"
  vm_make_certificates
  printf '%s\n' 'user = "root"' 'group = "root"' 'security_driver = "none"' 'dynamic_ownership = 0' \
    'remember_owner = 0' "backup_tls_x509_cert_dir = \"$vm_root/pki/server\"" 'backup_tls_x509_verify = 1' \
    >"$vm_root/etc/qemu.conf"
  printf '%s\n' 'listen_tls = 0' 'listen_tcp = 1' 'listen_addr = "127.0.0.1"' "tcp_port = \"$port\"" \
    'auth_tcp = "none"' >"$vm_root/etc/libvirtd.conf"
  vm_tcp_uri="qemu+tcp://127.0.0.1:$port/system"
  unshare --mount --propagation private -- sh -c "$script" </dev/null >"$vm_root/libvirtd.log" 2>&1 &
  vm_daemon_pid=$!
  vm_uri="qemu:///system?socket=$vm_root/run/libvirt-sock"
  for ((i = 0; i < 300; i++)); do
    kill -0 "$vm_daemon_pid" 2>/dev/null || { cat "$vm_root/libvirtd.log" >&2; die "libvirtd ended"; }
    if [[ -S $vm_root/run/libvirt-sock ]] && virsh -q -c "$vm_uri" version >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "libvirtd did not answer within 60 s"
}

# vm_setup SRC_RAW: the guest's disk is a qcow2 copy of SRC_RAW (made before the guest starts);
# ref.raw is what the disk must read as, updated with every guest write.
vm_setup() {
  local src=$1
  ensure_libvirt_users
  ((EUID == 0)) || die "the VM rows run a libvirtd of their own and need root (or --no-vm)"
  # Keep the folder short: unix socket paths under it are limited to 108 bytes.
  vm_root=$(mktemp -d /tmp/pbbench-XXXXXX)
  vm_start_daemon
  qemu-img convert -f raw -O qcow2 "$src" "$work/vda.qcow2"
  cp --sparse=always "$src" "$work/ref.raw"
  cat >"$work/vm.xml" <<XML
<domain type='qemu'>
  <name>$vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$work/vda.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <memballoon model='none'/>
  </devices>
</domain>
XML
  cat >"$work/backup.xml" <<XML
<domainbackup mode='pull'>
  <server transport='unix' socket='$vm_root/export.sock'/>
  <disks><disk name='vda' backup='yes' type='file'><scratch file='$work/scratch.qcow2'/></disk></disks>
</domainbackup>
XML
  vm_virsh define "$work/vm.xml" >/dev/null
  vm_virsh start "$vm" >/dev/null
  vm_export="nbd+unix:///vda?socket=$vm_root/export.sock"
  vm_job_begin
  vm_allocated=$(nbdinfo --map --totals "$vm_export" | awk '$3 == 0 { s += $1 } END { printf "%.0f\n", s }')
  vm_job_end
}

# A full pull-mode backup job exporting vda on a unix socket (no checkpoint), and its end.
vm_job_begin() {
  rm -f "$vm_root/export.sock"
  vm_virsh backup-begin "$vm" "$work/backup.xml" >/dev/null
}
vm_job_end() { vm_virsh domjobabort "$vm" >/dev/null; }

# 50 scattered 2 MiB guest writes, through the guest's own virtio device (so the dirty bitmaps see them),
# all inside the random data (so the disk's allocation stays what it was), mirrored into ref.raw.
vm_guest_writes() {
  local j k off slots=$((chunk / 2)) script=() ref=()
  vm_writes_done=$((vm_writes_done + 1))
  for ((j = 0; j < 50; j++)); do
    k=$((j / pieces + vm_writes_done))
    off=$(((j % pieces) * stride + (k % slots) * 2))M
    script+=("qemu-monitor-command $vm --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P $(((j + vm_writes_done) % 200 + 1)) $off 2M\"'")
    ref+=(-c "write -P $(((j + vm_writes_done) % 200 + 1)) $off 2M")
  done
  printf '%s\n' "${script[@]}" | virsh -q -c "$vm_uri" >/dev/null 2>"$work/virsh.err" ||
    { cat "$work/virsh.err" >&2; die "guest writes failed"; }
  qemu-io -f raw "${ref[@]}" "$work/ref.raw" >/dev/null
}

# vm_drop_checkpoints [DOMAIN]: every checkpoint of DOMAIN (the guest by default) goes, so that each full backup
# starts from a domain without any.
vm_drop_checkpoints() {
  local cp domain=${1:-$vm}
  for cp in $(vm_virsh checkpoint-list "$domain" --roots --name); do
    vm_virsh checkpoint-delete "$domain" "$cp" --children >/dev/null
  done
}

vm_rows() {
  row vm-pbq '`pullback copy --format qcow2` → qcow2 file'
  row vm-pb '`pullback copy` → raw file (1 MiB requests, 4 connections × 2 in flight)'
  row vm-pb-256k '`pullback copy --request-size 256K` → raw file'
  row vm-pb-4m '`pullback copy --request-size 4M` → raw file'
  row vm-pb-c1 '`pullback copy --connections 1` → raw file'
  row vm-pb-r8 '`pullback copy --requests-per-connection 8` → raw file'
  row vm-nbdcopy '`nbdcopy` → raw file, then `sync`'
  row vm-null '`nbdcopy` → `null:` (what the export can give)'
  row vm-full-tls '`pullback backup --level full` through `qemu+tcp://`, NBD over TCP with TLS'
  row vm-full '`pullback backup --level full` (whole VM, libvirt job included)'
  row vm-inc '`pullback backup --level incremental` after 50 scattered 2 MiB guest writes'
  row vm-restore '`pullback restore` of the last point → qcow2, then `sync`'
  row vm-live '`pullback restore --live` of the last point: a new domain started on its export, every disk pulled'
  if ((with_s3)); then
    row vm-s3-full '`pullback backup --level full` straight into a bucket (SeaweedFS on loopback)'
    row vm-s3-inc '`pullback backup --level incremental` into the bucket after 50 scattered 2 MiB guest writes'
    row vm-s3-restore '`pullback restore` of the bucket'"'"'s last point → qcow2, then `sync`'
    row vm-folder-plus-cp '`pullback backup --level full` into a folder, then `aws s3 cp --recursive` of the point'
  fi
  # After the restore row, whose check compares with the guest's disk as the last point saw it.
  row vm-full-check '`pullback backup --level full --check-source` (a full read already: nothing more is read)'
  row vm-inc-check '`pullback backup --level incremental --check-source` after 50 guest writes'
  if [[ -n $baseline_bin ]]; then
    row vm-pbq-base '`pullback copy --format qcow2` of the baseline build'
    row vm-pb-base '`pullback copy` of the baseline build'
    row vm-full-base '`pullback backup --level full` of the baseline build'
    row vm-inc-base '`pullback backup --level incremental` of the baseline build, after 50 guest writes'
    row vm-restore-base '`pullback restore` of the baseline build'"'"'s last point (made by the baseline rows)'
  fi
  if [[ -n $vm_peer ]]; then
    row vnb-full '`virtnbdbackup -l full`, then `sync`'
    row vnb-inc '`virtnbdbackup -l inc` after 50 scattered 2 MiB guest writes, then `sync`'
    row vnb-restore '`virtnbdrestore` of the last point, then `sync`'
  fi
}

# vm_peer_setup DIR: a virtnbdbackup checkout; its Python dependencies are Debian packages.
vm_peer_setup() {
  vm_peer=$(cd "$1" && pwd) || die "--peer-virtnbdbackup: no such directory: $1"
  [[ -f $vm_peer/virtnbdbackup && -f $vm_peer/virtnbdrestore ]] ||
    die "--peer-virtnbdbackup: $vm_peer holds no virtnbdbackup and virtnbdrestore"
  ensure_packages python3-libvirt python3-libnbd python3-tqdm python3-lz4 python3-lxml python3-paramiko python3-colorlog
}
# vnb TOOL: the command line that runs TOOL of the checkout (a command for /usr/bin/time, not a function), with
# the Python that the Debian packages of its dependencies install into.
vnb() { vnb=(env "PYTHONPATH=$vm_peer${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 "$vm_peer/$1" -U "$vm_uri" --noprogress); }

# vm_run_row ID: sets secs, cpu, rss_kib and vm_bytes (bytes read from the guest's disk or the repository).
vm_run_row() {
  local out="$work/out.raw" outq="$work/out.qcow2"
  vm_bytes=$vm_allocated
  case $1 in
    vm-pb | vm-pb-* | vm-pbq | vm-pbq-base | vm-nbdcopy | vm-null)
      rm -f "$out" "$outq" "$work"/.out.*.pullback-partial
      sync
      vm_job_begin
      case $1 in
        vm-pb) timed nosync "$bin" copy "$vm_export" "$out" --json ;;
        vm-pb-256k) timed nosync "$bin" copy "$vm_export" "$out" --json --request-size $((256 << 10)) ;;
        vm-pb-4m) timed nosync "$bin" copy "$vm_export" "$out" --json --request-size $((4 << 20)) ;;
        vm-pb-c1) timed nosync "$bin" copy "$vm_export" "$out" --json --connections 1 ;;
        vm-pb-r8) timed nosync "$bin" copy "$vm_export" "$out" --json --requests-per-connection 8 ;;
        vm-pbq) timed nosync "$bin" copy "$vm_export" "$outq" --format qcow2 --json ;;
        vm-pbq-base) timed nosync "$baseline_bin" copy "$vm_export" "$outq" --format qcow2 --json ;;
        vm-pb-base) timed nosync "$baseline_bin" copy "$vm_export" "$out" --json ;;
        vm-nbdcopy) timed sync nbdcopy "$vm_export" "$out" ;;
        vm-null) timed nosync nbdcopy "$vm_export" null: ;;
      esac
      vm_job_end
      case $1 in vm-pb | vm-pb-* | vm-pbq | vm-pbq-base) vm_bytes=$(json_field bytes_read) ;; esac
      ;;
    vm-full-tls)
      rm -rf "$work/repo"
      "$bin" init --repo "$work/repo" >/dev/null
      vm_drop_checkpoints
      sync
      timed nosync "$bin" backup "$vm" --repo "$work/repo" --level full --connect "$vm_tcp_uri" --json --no-progress \
        --nbd-tls-certificates "$vm_root/pki/client" --scratch-dir "$work"
      vm_bytes=$(json_field bytes_read)
      ;;
    vm-full | vm-full-check | vm-full-base)
      # Each full starts its own repository; the incremental row after it continues that chain.
      local tool=$bin repo=$work/repo extra=()
      case $1 in
        vm-full-check) repo=$work/repo-check extra=(--check-source) ;;
        vm-full-base) repo=$work/repo-base tool=$baseline_bin ;;
      esac
      rm -rf "$repo"
      "$tool" init --repo "$repo" >/dev/null
      vm_drop_checkpoints
      sync
      timed nosync "$tool" backup "$vm" --repo "$repo" --level full --connect "$vm_uri" --json --no-progress "${extra[@]}"
      vm_bytes=$(json_field bytes_read)
      ;;
    vm-inc | vm-inc-check | vm-inc-base)
      local tool=$bin repo=$work/repo extra=()
      case $1 in
        vm-inc-check) repo=$work/repo-check extra=(--check-source) ;;
        vm-inc-base) repo=$work/repo-base tool=$baseline_bin ;;
      esac
      vm_guest_writes
      sync
      timed nosync "$tool" backup "$vm" --repo "$repo" --level incremental --connect "$vm_uri" --json --no-progress \
        "${extra[@]}"
      vm_bytes=$(json_field bytes_read)
      # The folder's incremental point on disk, beside what the bucket's incremental uploads.
      [[ $1 != vm-inc ]] || folder_inc_bytes=$(du -sb "$repo/$vm/$(json_point)" | cut -f1)
      ;;
    vm-restore | vm-restore-base)
      # Each build restores the newest point of its own chain (a full and an incremental), the guest's disk now.
      local tool=$bin repo=$work/repo
      [[ $1 == vm-restore ]] || tool=$baseline_bin repo=$work/repo-base
      rm -rf "$work/restored"
      sync
      timed sync "$tool" restore --repo "$repo" "$vm" --to "$work/restored" --no-progress
      ;;
    vm-live)
      # The new domain runs on the point's export until its disk is pulled; it is removed after the row (untimed),
      # once stopped, so that QEMU has flushed the overlay the check compares.
      rm -rf "$work/live"
      sync
      timed sync "$bin" restore --repo "$work/repo" "$vm" --live --define "$vm-live" --to "$work/live" \
        --connect "$vm_uri" --json --no-progress
      live_running+="$(json_field seconds_to_running) "
      vm_virsh destroy "$vm-live" >/dev/null
      vm_virsh undefine "$vm-live" >/dev/null
      ;;
    vm-s3-full)
      # Each run starts a new repository under the same prefix (the previous one's objects removed, untimed).
      aws s3 rm --recursive --quiet "$s3_repo" >/dev/null
      "$bin" init --repo "$s3_repo" >/dev/null
      vm_drop_checkpoints
      sync
      s3_cpu_begin
      timed nosync "$bin" backup "$vm" --repo "$s3_repo" --level full --connect "$vm_uri" --json --no-progress
      s3_cpu_end "$1"
      vm_bytes=$(json_field bytes_read)
      s3_point=$(json_point)
      ;;
    vm-s3-inc)
      vm_guest_writes
      sync
      s3_cpu_begin
      timed nosync "$bin" backup "$vm" --repo "$s3_repo" --level incremental --connect "$vm_uri" --json --no-progress
      s3_cpu_end "$1"
      vm_bytes=$(json_field bytes_read)
      s3_point=$(json_point)
      s3_inc_uploaded=$(s3_prefix_bytes "$s3_repo/$vm/$s3_point/")
      ;;
    vm-s3-restore)
      rm -rf "$work/restored-s3"
      sync
      s3_cpu_begin
      timed sync "$bin" restore --repo "$s3_repo" "$vm" --to "$work/restored-s3" --no-progress
      s3_cpu_end "$1"
      ;;
    vm-folder-plus-cp)
      # What a user would otherwise script: a backup into a local folder, then the AWS CLI (its default settings)
      # copies the new point's folder into the bucket. Timed together, as one command.
      rm -rf "$work/repo-cp"
      "$bin" init --repo "$work/repo-cp" >/dev/null
      aws s3 rm --recursive --quiet "$s3_cp_repo" >/dev/null
      vm_drop_checkpoints
      sync
      s3_cpu_begin
      # shellcheck disable=SC2016 # the script's variables are its own positional parameters
      timed nosync bash -c 'set -e
        "$1" backup "$2" --repo "$3" --level full --connect "$4" --json --no-progress
        point=$(dirname "$3/$2"/*/manifest.json)
        aws s3 cp --recursive --quiet "$point" "$5/$2/${point##*/}" >&2' \
        _ "$bin" "$vm" "$work/repo-cp" "$vm_uri" "$s3_cp_repo"
      s3_cpu_end "$1"
      vm_bytes=$(json_field bytes_read)
      s3_point=$(json_point)
      ;;
    vnb-full)
      rm -rf "$work/vnb" "$work/vnb-restored"
      vm_drop_checkpoints
      sync
      vnb virtnbdbackup
      timed sync "${vnb[@]}" -d "$vm" -l full -o "$work/vnb" --scratchdir "$work" -f "$vm_root/vnb.sock"
      ;;
    vnb-inc)
      vm_guest_writes
      sync
      vnb virtnbdbackup
      timed sync "${vnb[@]}" -d "$vm" -l inc -o "$work/vnb" --scratchdir "$work" -f "$vm_root/vnb.sock"
      vm_bytes=$((50 * 2 << 20))
      ;;
    vnb-restore)
      rm -rf "$work/vnb-restored"
      sync
      vnb virtnbdrestore
      timed sync "${vnb[@]}" -i "$work/vnb" -o "$work/vnb-restored" -f "$vm_root/vnbr.sock"
      ;;
  esac
}

# After the first run of a row: what it wrote must read as the guest's disk (ref.raw).
vm_check_row() {
  case $1 in
    vm-pb | vm-pb-base) qemu-img compare -q -f raw -F raw "$work/out.raw" "$work/ref.raw" || die "$1: the copy differs from the guest's disk" ;;
    vm-pbq | vm-pbq-base) qemu-img compare -q -f qcow2 -F raw "$work/out.qcow2" "$work/ref.raw" || die "$1: the copy differs from the guest's disk" ;;
    vm-restore | vm-restore-base) qemu-img compare -q -f qcow2 -F raw "$work/restored/vda.qcow2" "$work/ref.raw" ||
      die "$1: the restored disk differs from the guest's disk" ;;
    vm-live)
      [[ -z $(qemu-img info "$work/live/vda.qcow2" | grep 'backing file:') ]] || die "$1: the overlay still has a backing"
      qemu-img compare -q -f qcow2 -F raw "$work/live/vda.qcow2" "$work/ref.raw" ||
        die "$1: the pulled overlay differs from the guest's disk" ;;
    vm-s3-full)
      # The point restored from the bucket must read as the guest's disk when it was taken (ref.raw, still).
      rm -rf "$work/check-s3"
      "$bin" restore --repo "$s3_repo" "$vm" --at "$s3_point" --to "$work/check-s3" --no-progress >/dev/null ||
        die "$1: restoring the point from the bucket failed"
      qemu-img compare -q -f qcow2 -F raw "$work/check-s3/vda.qcow2" "$work/ref.raw" ||
        die "$1: the point restored from the bucket differs from the guest's disk"
      rm -rf "$work/check-s3" ;;
    vm-s3-inc)
      # Its objects against their digests (the restore row after it compares the restored disk too).
      "$bin" verify --repo "$s3_repo" "$vm" --at "$s3_point" --content --no-progress >"$work/verify.out" ||
        { cat "$work/verify.out" >&2; die "$1: pullback verify of the incremental in the bucket failed"; } ;;
    vm-s3-restore) qemu-img compare -q -f qcow2 -F raw "$work/restored-s3/vda.qcow2" "$work/ref.raw" ||
      die "$1: the disk restored from the bucket differs from the guest's disk" ;;
    vm-folder-plus-cp)
      # The copied point, with the repository's identity beside it, is a bucket repository: verify reads every
      # object the CLI uploaded and checks it against the point's digests, and a restore from it compares.
      aws s3 cp --quiet "$work/repo-cp/repository.json" "$s3_cp_repo/repository.json" >/dev/null
      "$bin" verify --repo "$s3_cp_repo" "$vm" --at "$s3_point" --no-progress >"$work/verify.out" ||
        { cat "$work/verify.out" >&2; die "$1: pullback verify of the point copied by aws s3 cp failed"; }
      rm -rf "$work/check-s3"
      "$bin" restore --repo "$s3_cp_repo" "$vm" --at "$s3_point" --to "$work/check-s3" --no-progress >/dev/null ||
        die "$1: restoring the copied point from the bucket failed"
      qemu-img compare -q -f qcow2 -F raw "$work/check-s3/vda.qcow2" "$work/ref.raw" ||
        die "$1: the point copied into the bucket differs from the guest's disk"
      rm -rf "$work/check-s3" ;;
    vnb-restore)
      local img
      img=$(find "$work/vnb-restored" -name 'vda*' -type f | head -n 1)
      [[ -n $img ]] || die "$1: virtnbdrestore wrote no image for vda"
      qemu-img compare -q -F raw "$img" "$work/ref.raw" || die "$1: virtnbdrestore's image differs from the guest's disk" ;;
  esac
}

# The bucket rows: SeaweedFS (`weed server -s3`) of our own on loopback ports with data in $work, one identity whose
# keys are made here, and a bucket; the AWS variables exported for pullback and the AWS CLI alike.
s3_pid=
s3_bucket=pullback-bench
s3_repo=s3://$s3_bucket/direct
s3_cp_repo=s3://$s3_bucket/copied
s3_point=
s3_inc_uploaded=0
folder_inc_bytes=0
# restore --live: seconds from its start to the running domain, one per run.
live_running=
s3_cpu_before=0
declare -A s3_cpus

# The AWS CLI (the folder-plus-copy row's uploader and the bucket's housekeeping): from PyPI into a venv if missing.
ensure_awscli() {
  command -v aws >/dev/null 2>&1 && return 0
  local venv="${PULLBACK_TOOLS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/pullback}/awscli-venv"
  if [[ ! -x $venv/bin/aws ]]; then
    log "installing: awscli into $venv"
    python3 -m venv "$venv" || die "cannot create a Python venv in $venv (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check awscli || die "pip install awscli failed"
  fi
  export PATH="$venv/bin:$PATH"
}

s3_start() {
  local dir=$work/seaweedfs base port i try
  ensure_seaweedfs >&2
  ensure_awscli
  mkdir -p "$dir"
  export AWS_ACCESS_KEY_ID="PB$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
  export AWS_SECRET_ACCESS_KEY="$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  printf '{"identities": [{"name": "bench", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}\n' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$dir/identities.json"
  for ((try = 0; try < 5; try++)); do
    # Four ports and their gRPC ports (+10000), none of them in use now.
    base=$((20000 + RANDOM % 9990))
    if ss -Htln | awk -v b="$base" '{ n = split($4, a, ":"); p = a[n] } p >= b && p < b + 4 || p >= b + 10000 && p < b + 10004 { f = 1 } END { exit !f }'; then
      continue
    fi
    port=$((base + 3))
    "$PULLBACK_WEED" server -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.port="$base" \
      -volume.port=$((base + 1)) -filer.port=$((base + 2)) -s3 -s3.port="$port" -s3.config="$dir/identities.json" \
      -s3.port.iceberg=0 -s3.port.lance=0 -s3.autoCreateBucket=false -master.volumeSizeLimitMB=1024 \
      -volume.max=100 -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" >"$dir/weed.log" 2>&1 &
    s3_pid=$!
    for ((i = 0; i < 300; i++)); do
      kill -0 "$s3_pid" 2>/dev/null || break
      if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.1
    done
    if kill -0 "$s3_pid" 2>/dev/null; then
      export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
      # It may answer 503 for a few seconds after it listens.
      for ((i = 0; i < 60; i++)); do
        aws s3 mb "s3://$s3_bucket" >/dev/null 2>&1 && return 0
        aws s3 ls "s3://$s3_bucket" >/dev/null 2>&1 && return 0
        sleep 0.5
      done
      tail -n 20 "$dir/weed.log" >&2
      die "SeaweedFS on port $port did not make the bucket within 30 s"
    fi
    s3_pid=
  done
  tail -n 20 "$dir/weed.log" >&2
  die "weed server did not start on any of 5 random sets of ports"
}

# SIGTERM, then SIGKILL after 20 s: it flushes for a few seconds before it exits.
s3_stop() {
  [[ -n $s3_pid ]] || return 0
  local i
  kill "$s3_pid" 2>/dev/null || { s3_pid=; return 0; }
  for ((i = 0; i < 200; i++)); do kill -0 "$s3_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$s3_pid" 2>/dev/null || true
  wait "$s3_pid" 2>/dev/null || true
  s3_pid=
}

# The CPU seconds SeaweedFS spends during a row (all its threads), beside the tool's own.
s3_cpu_now() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / t }' "/proc/$s3_pid/stat"; }
s3_cpu_begin() { s3_cpu_before=$(s3_cpu_now); }
s3_cpu_end() { s3_cpus[$1]+="$(awk -v a="$s3_cpu_before" -v b="$(s3_cpu_now)" 'BEGIN { printf "%.2f", b - a }') "; }

# The total size of the objects under an s3:// prefix (what was uploaded there).
s3_prefix_bytes() {
  aws s3 ls --recursive --summarize "$1" | awk '/Total Size:/ { print $3 }'
}

json_point() { grep -o '"point" *: *"[^"]*"' "$work/stdout" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/'; }
