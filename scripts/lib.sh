# Shared by scripts/test and scripts/quickstart: bring a fresh Debian machine (as root) up to what Beaker needs.
# Every step checks first and does nothing when the machine already has it.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

BEAKER_TEST_LIB=/usr/local/lib/beaker-test
BEAKER_TEST_CACHE=/var/cache/beaker-test

ensure_root() {
  [ "$(id -u)" = 0 ] || die "run this as root (it installs packages and starts Docker)"
}

# ensure_packages CMD:PACKAGE ... installs the Debian packages whose command is missing.
ensure_packages() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -e "${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

ensure_node_modules() {
  if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed"
  fi
  export PATH="$PWD/node_modules/.bin:$PATH"
}

# The stub NVIDIA hook must be on the engine's PATH when the engine starts: Docker then registers its `nvidia`
# device driver and runs the real `--gpus device=UUID` path.
install_stub_hook() {
  mkdir -p "$BEAKER_TEST_LIB/bin"
  install -m 0755 test/fixtures/bin/nvidia-container-runtime-hook "$BEAKER_TEST_LIB/bin/nvidia-container-runtime-hook"
}

docker_answers() { timeout 10 docker ${1:+-H "$1"} info >/dev/null 2>&1; }

start_dockerd() { # start_dockerd LOG [in_private_netns] [extra dockerd flags...]
  local logfile=$1 launcher=(); shift
  if [ "${1:-}" = in_private_netns ]; then launcher=(nsenter --net="/run/netns/$PRIVATE_ENGINE_NETNS"); shift; fi
  # The engine outlives this script: it must not keep our open files (a caller's `flock` lock, a pipe that a
  # caller reads to its end), so every descriptor past stderr is closed before it starts, in its own session.
  (
    for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    PATH="$BEAKER_TEST_LIB/bin:$PATH" exec setsid "${launcher[@]}" dockerd "$@" </dev/null >"$logfile" 2>&1
  ) &
  local i
  for i in $(seq 1 60); do
    if docker_answers "${DOCKER_HOST:-}"; then return 0; fi
    sleep 0.5
  done
  tail -20 "$logfile" >&2
  die "the Docker engine did not start (log: $logfile)"
}

# Builds a local image from Debian packages, once per tag (no registry is reachable).
ensure_debian_image() { # ensure_debian_image TAG
  local tag=$1
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  debian_rootfs
  log "importing $tag"
  docker import -c 'CMD ["/bin/bash"]' "$BEAKER_TEST_CACHE/debian-bookworm-minbase.tar" "$tag" >/dev/null
}

# retry TRIES CMD...: runs CMD until it succeeds, TRIES times at most, waiting 2, 4, 8, ... s between tries (a mirror
# that drops a connection, a proxy that times out once).
retry() {
  local tries=$1 try delay=2; shift
  for ((try = 1; ; try++)); do
    "$@" && return 0
    ((try < tries)) || return 1
    log "failed (try $try of $tries), again in ${delay}s: $*"
    sleep "$delay"
    delay=$((delay * 2))
  done
}

# debootstrap_into ROOT: a minbase bookworm with procps in ROOT (emptied first, so that a retry starts clean).
debootstrap_into() {
  rm -rf "${1:?}"/* 2>/dev/null || true
  debootstrap --variant=minbase --include=procps bookworm "$1" http://deb.debian.org/debian >"$BEAKER_TEST_CACHE/debootstrap.log" 2>&1
}

# The Debian rootfs every test image starts from, built once with debootstrap and cached as a tarball.
debian_rootfs() {
  local tarball="$BEAKER_TEST_CACHE/debian-bookworm-minbase.tar"
  [ -s "$tarball" ] && return 0
  log "building a Debian rootfs with debootstrap (once, cached in $BEAKER_TEST_CACHE)"
  local root; root=$(mktemp -d)
  mkdir -p "$BEAKER_TEST_CACHE"
  retry 4 debootstrap_into "$root" || { tail -20 "$BEAKER_TEST_CACHE/debootstrap.log" >&2; rm -rf "$root"; die "debootstrap failed"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
}

# apt_in_root ROOT PACKAGES...: Debian's packages installed in a rootfs by its own apt (which, unlike debootstrap's
# --include, resolves virtual packages such as the cffi backend python3-zmq needs); /proc mounted meanwhile.
apt_in_root() {
  local root=$1 rc=0; shift
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  { chroot "$root" apt-get update -qq && DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends "$@"; } \
    >>"$BEAKER_TEST_CACHE/jupyter-apt.log" 2>&1 || rc=$?
  umount "$root/proc"
  return "$rc"
}

# Jupyter for the ports-in-the-browser e2e test, from Debian's packages (notebook 6.4, the classic NotebookApp
# options): the cached Debian rootfs plus jupyter-notebook and python3-ipykernel, cached as a tarball too, then
# imported. No registry.
ensure_jupyter_image() { # ensure_jupyter_image TAG
  local tag=$1 tarball="$BEAKER_TEST_CACHE/jupyter-bookworm-minbase.tar"
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  if [ ! -s "$tarball" ]; then
    debian_rootfs
    log "building a Jupyter rootfs from Debian packages (once, cached in $BEAKER_TEST_CACHE; a few minutes)"
    local root; root=$(mktemp -d)
    tar -C "$root" -xf "$BEAKER_TEST_CACHE/debian-bookworm-minbase.tar"
    : >"$BEAKER_TEST_CACHE/jupyter-apt.log"
    retry 4 apt_in_root "$root" jupyter-notebook python3-ipykernel \
      || { tail -20 "$BEAKER_TEST_CACHE/jupyter-apt.log" >&2; rm -rf "$root"; die "installing Jupyter into the Debian rootfs failed"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  log "importing $tag"
  docker import -c 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null
}

# Two rootfs tarballs from Debian's busybox-static, cached: busybox like Alpine's userland (a passwd with only root),
# and a distroless-like one with only /app/busybox and no shell at all.
busybox_rootfs() {
  local bb="$BEAKER_TEST_CACHE/busybox-rootfs.tar" ns="$BEAKER_TEST_CACHE/noshell-rootfs.tar"
  [ -s "$bb" ] && [ -s "$ns" ] && return 0
  local work; work=$(mktemp -d)
  (cd "$work" && apt-get download busybox-static >/dev/null 2>&1) || die "cannot download Debian's busybox-static"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"
  mkdir -p "$work/bb/bin" "$work/bb/etc" "$work/bb/tmp" "$work/bb/root" "$BEAKER_TEST_CACHE"
  chmod 1777 "$work/bb/tmp"
  cp "$work/pkg/bin/busybox" "$work/bb/bin/busybox"
  local applet
  for applet in $("$work/bb/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/bb/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$work/bb/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/bb/etc/group"
  tar -C "$work/bb" -cf "$bb.tmp" . && mv "$bb.tmp" "$bb"
  mkdir -p "$work/ns/app"
  cp "$work/pkg/bin/busybox" "$work/ns/app/busybox"
  tar -C "$work/ns" -cf "$ns.tmp" . && mv "$ns.tmp" "$ns"
  rm -rf "$work"
}

# Slurm and munge for the Slurm tests, which run their own daemons: the packages' system services are kept from
# starting (and from starting at boot), so installing them leaves nothing running.
ensure_slurm() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v salloc >/dev/null && return 0
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && guard=1
  fi
  ensure_packages slurmctld:slurmctld slurmd:slurmd munged:munge salloc:slurm-client
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
  if [ -d /run/systemd/system ]; then systemctl disable --now slurmctld slurmd munge >/dev/null 2>&1 || true; fi
}

ensure_busybox_images() { # ensure_busybox_images BUSYBOX_TAG NOSHELL_TAG
  docker image inspect "$1" >/dev/null 2>&1 && docker image inspect "$2" >/dev/null 2>&1 && return 0
  busybox_rootfs
  docker import -c 'CMD ["/bin/sh"]' "$BEAKER_TEST_CACHE/busybox-rootfs.tar" "$1" >/dev/null
  docker import -c 'ENTRYPOINT ["/app/busybox"]' "$BEAKER_TEST_CACHE/noshell-rootfs.tar" "$2" >/dev/null
}

ensure_user() { # ensure_user NAME
  id "$1" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$1"
}

# ensure_derived_image BASE TAG PACKAGE...: BASE plus Debian packages, once per tag. This machine's apt (which must
# track BASE's release) works out what BASE lacks from BASE's own dpkg status and downloads it; dpkg installs it in a
# container with no network.
ensure_derived_image() {
  local base=$1 tag=$2; shift 2
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  log "building $tag: $base plus $*"
  local work id
  work=$(mktemp -d)
  mkdir -p "$work/debs/partial"
  docker run --rm --network none "$base" cat /var/lib/dpkg/status >"$work/status" || die "cannot read the dpkg status of $base"
  apt-get install -qq --download-only --no-install-recommends -o Debug::NoLocking=1 -o Dir::State::status="$work/status" \
    -o Dir::Cache::archives="$work/debs" "$@" >/dev/null || die "cannot download $* for $base"
  chmod -R a+rX "$work"
  id=$(docker create --network none -v "$work/debs:/debs:ro" "$base" sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -i /debs/*.deb >/dev/null')
  docker start -a "$id" >/dev/null || { docker rm "$id" >/dev/null; die "installing $* into $base failed"; }
  docker commit -c 'CMD ["/bin/bash"]' "$id" "$tag" >/dev/null
  docker rm "$id" >/dev/null
  rm -rf "$work"
}

# --- The test engine beside the machine's own -------------------------------------------------------------------
# When the machine's engine cannot run the GPU path (no stub hook on its PATH), or BEAKER_TEST_PRIVATE_ENGINE=1,
# scripts/test runs a private engine, and the tests beside it, in a network namespace of their own (beaker-test):
# its own socket, data-root, exec-root, pidfile and config file, and its own bridge, addresses and iptables rules
# inside that namespace. Nothing of it can reach the machine's engine. In the machine's namespace a second dockerd
# could not be made safe: with `--bridge none` it deletes docker0; with iptables on it flushes the DOCKER chains that
# the first engine's published ports live in; with iptables off it cannot keep sessions apart (icc) nor NAT them.
# Its data root stays between runs, a cache of the test images like $BEAKER_TEST_CACHE.

PRIVATE_ENGINE_DIR=/run/beaker-test
PRIVATE_ENGINE_HOST=unix://$PRIVATE_ENGINE_DIR/docker.sock
PRIVATE_ENGINE_NETNS=beaker-test

# Runs a command in the private engine's network namespace (nsenter: `ip netns exec` would also remount /sys).
in_private_netns() {
  nsenter --net="/run/netns/$PRIVATE_ENGINE_NETNS" "$@"
}

# The private engine's PID, when the pidfile names a live dockerd started with that pidfile (never any other).
private_engine_pid() {
  local pid
  pid=$(cat "$PRIVATE_ENGINE_DIR/docker.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--pidfile $PRIVATE_ENGINE_DIR/docker.pid" && echo "$pid"
}

start_private_engine() {
  stop_private_engine # one a killed run left behind
  mkdir -p "$PRIVATE_ENGINE_DIR"
  ip netns add "$PRIVATE_ENGINE_NETNS"
  in_private_netns ip link set lo up
  echo '{}' >"$PRIVATE_ENGINE_DIR/daemon.json"
  DOCKER_HOST=$PRIVATE_ENGINE_HOST start_dockerd /var/log/beaker-test-dockerd-private.log in_private_netns \
    --config-file "$PRIVATE_ENGINE_DIR/daemon.json" --host "$PRIVATE_ENGINE_HOST" \
    --data-root /var/lib/beaker-test/docker --exec-root "$PRIVATE_ENGINE_DIR/exec" --pidfile "$PRIVATE_ENGINE_DIR/docker.pid"
}

# Stops the private engine (it stops its containers), then deletes its namespace and run-time folder.
stop_private_engine() {
  local pid i point
  if pid=$(private_engine_pid); then
    kill "$pid"
    for i in $(seq 1 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && die "the private Docker engine (pid $pid) did not stop"
  fi
  for point in $(awk -v dir="$PRIVATE_ENGINE_DIR/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount "$point"; done
  if [ -e "/run/netns/$PRIVATE_ENGINE_NETNS" ]; then ip netns delete "$PRIVATE_ENGINE_NETNS"; fi
  rm -rf "$PRIVATE_ENGINE_DIR"
}

# --- The machine's own engine, before and after ----------------------------------------------------------------
HOST_ENGINE=unix:///var/run/docker.sock

# host_engine_snapshot FILE: records the machine's engine as the tests find it (its bridge interface, an image that
# runs, its containers but the test nodes' own); fails when no engine answers there.
host_engine_snapshot() {
  local file=$1 image ids
  docker_answers "$HOST_ENGINE" || return 1
  echo "bridge $(docker -H "$HOST_ENGINE" network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || echo -)" >"$file"
  for image in $(docker -H "$HOST_ENGINE" images --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' | head -5); do
    if timeout 60 docker -H "$HOST_ENGINE" run --rm "$image" true >/dev/null 2>&1; then echo "image $image" >>"$file"; break; fi
    echo "broken $image" >>"$file" # the last one tried, when none ran: the engine was broken before the tests
  done
  ids=$(docker -H "$HOST_ENGINE" ps -aq)
  [ -z "$ids" ] || docker -H "$HOST_ENGINE" inspect -f '{{.Id}} {{.State.Status}} {{.State.StartedAt}} {{index .Config.Labels "beaker.node"}}' $ids |
    awk -v prefix="$BEAKER_TEST_NODE_PREFIX-" 'index($4, prefix) != 1 { print "container " $1 " " $2 " " $3 }' >>"$file"
}

# host_engine_check FILE: the engine still works as before; one line per check, "ok" or "FAIL: why". Returns the
# number of failed checks.
host_engine_check() {
  local file=$1 failed=0 bridge image id state started now out
  bridge=$(awk '$1 == "bridge" { print $2 }' "$file")
  if [ "$bridge" = - ] || ip link show "$bridge" >/dev/null 2>&1; then echo "ok: the engine's bridge ($bridge) is there"
  else echo "FAIL: the engine's bridge interface $bridge is gone"; failed=$((failed + 1)); fi

  image=$(awk '$1 == "image" { print $2 }' "$file")
  if [ -z "$image" ] && grep -q '^broken ' "$file"; then
    echo "FAIL: the engine could not run its images before the tests either (docker run --rm $(awk '$1 == "broken" { i = $2 } END { print i }' "$file") true)"
    failed=$((failed + 1))
  elif [ -z "$image" ]; then # it had no image: run one of ours, then remove it again
    busybox_rootfs
    image=beaker-test/host-probe:$$
    docker -H "$HOST_ENGINE" import "$BEAKER_TEST_CACHE/busybox-rootfs.tar" "$image" >/dev/null
  fi
  if [ -n "$image" ]; then
    if out=$(timeout 120 docker -H "$HOST_ENGINE" run --rm "$image" true 2>&1); then echo "ok: docker run --rm $image true"
    else echo "FAIL: docker run --rm $image true: $out"; failed=$((failed + 1)); fi
    [ "$image" != "beaker-test/host-probe:$$" ] || docker -H "$HOST_ENGINE" rmi "$image" >/dev/null
  fi

  local changed=0 count=0
  while read -r _ id state started; do
    count=$((count + 1))
    now=$(docker -H "$HOST_ENGINE" inspect -f '{{.State.Status}} {{.State.StartedAt}}' "$id" 2>/dev/null) || now=gone
    if [ "$now" != "$state $started" ]; then echo "  container ${id:0:12} was '$state $started', now '$now'"; changed=$((changed + 1)); fi
  done < <(grep '^container ' "$file")
  if [ "$changed" = 0 ]; then echo "ok: the $count containers it had are as they were"
  else echo "FAIL: $changed of its $count containers changed"; failed=$((failed + 1)); fi
  return "$failed"
}
