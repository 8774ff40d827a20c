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

start_dockerd() { # start_dockerd LOG [extra dockerd flags...]
  local logfile=$1; shift
  # The engine outlives this script: it must not keep our open files (a caller's `flock` lock, a pipe that a
  # caller reads to its end), so every descriptor past stderr is closed before it starts, in its own session.
  (
    for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    PATH="$BEAKER_TEST_LIB/bin:$PATH" exec setsid dockerd "$@" </dev/null >"$logfile" 2>&1
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
  local tag=$1 tarball="$BEAKER_TEST_CACHE/debian-bookworm-minbase.tar"
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  if [ ! -s "$tarball" ]; then
    log "building a Debian rootfs with debootstrap (once, cached in $BEAKER_TEST_CACHE)"
    local root; root=$(mktemp -d)
    mkdir -p "$BEAKER_TEST_CACHE"
    debootstrap --variant=minbase --include=procps bookworm "$root" http://deb.debian.org/debian >"$BEAKER_TEST_CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$BEAKER_TEST_CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  log "importing $tag"
  docker import -c 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null
}

# A busybox image like Alpine's userland (a passwd with only root), and a distroless-like one with no shell at all.
ensure_busybox_images() { # ensure_busybox_images BUSYBOX_TAG NOSHELL_TAG
  docker image inspect "$1" >/dev/null 2>&1 && docker image inspect "$2" >/dev/null 2>&1 && return 0
  local work; work=$(mktemp -d)
  (cd "$work" && apt-get download busybox-static >/dev/null 2>&1) || die "cannot download Debian's busybox-static"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"
  mkdir -p "$work/bb/bin" "$work/bb/etc" "$work/bb/tmp" "$work/bb/root"
  chmod 1777 "$work/bb/tmp"
  cp "$work/pkg/bin/busybox" "$work/bb/bin/busybox"
  local applet
  for applet in $("$work/bb/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/bb/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$work/bb/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/bb/etc/group"
  tar -C "$work/bb" -c . | docker import -c 'CMD ["/bin/sh"]' - "$1" >/dev/null
  mkdir -p "$work/ns/app"
  cp "$work/pkg/bin/busybox" "$work/ns/app/busybox"
  tar -C "$work/ns" -c . | docker import -c 'ENTRYPOINT ["/app/busybox"]' - "$2" >/dev/null
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
