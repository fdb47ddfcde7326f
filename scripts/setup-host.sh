#!/usr/bin/env bash
# Prepares this machine for Ferry: system packages from Debian 12, a JDK and Maven,
# and CRIU >= 4.2 (the host's own if new enough and working, otherwise Debian
# unstable's CRIU unpacked into a project-local prefix behind a wrapper script).
# Idempotent: a second run only checks and takes a few seconds.
# It never changes the machine's apt configuration or its network.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${FERRY_CRIU_PREFIX:-$REPO/.ferry/criu}"   # where a private CRIU goes
MARK="$REPO/.ferry/host-ready"                       # cache marker
RUNSC_PREFIX="${FERRY_RUNSC_PREFIX:-$REPO/.ferry/runsc}" # where gVisor's runsc goes (--runtime runsc)

say() { echo "[ferry setup] $*" >&2; }
die() { echo "[ferry setup] error: $*" >&2; exit 1; }

[[ "$(uname -s)" == Linux ]] || die "Ferry needs Linux (runc, CRIU, network namespaces); this is $(uname -s)."
[[ "$(id -u)" == 0 ]] || die "run as root: Ferry creates network namespaces, runc containers and CRIU checkpoints (try: sudo $0)."

PKGS=(runc iptables iproute2 redis-server redis-tools busybox-static iputils-arping
      nftables tcpdump iperf3 socat openssl openjdk-17-jdk-headless maven ca-certificates curl procps psmisc)

missing_pkgs() {
  local p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

criu_ok() {  # $1 = criu command; true when version >= 4.2 and `criu check` passes
  local v
  v="$("$1" --version 2>/dev/null | sed -n 's/^Version: *//p')" || return 1
  [[ -n "$v" ]] || return 1
  local major="${v%%.*}" rest="${v#*.}"; local minor="${rest%%.*}"
  (( major > 4 || (major == 4 && minor >= 2) )) || { say "CRIU $v at $1 is too old (need >= 4.2)"; return 1; }
  "$1" check >/dev/null 2>&1 || { say "'$1 check' fails"; return 1; }
}

install_packages() {
  local miss
  miss="$(missing_pkgs)"
  if [[ -n "$miss" ]]; then
    say "installing: $(echo $miss)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $miss >/dev/null
  fi
  # Debian starts redis-server as a system service where an init system runs; Ferry runs
  # its own Redis inside pods only, so a system one is not needed.
  if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
}

# A private apt configuration for one Debian suite, kept in a work directory: the machine's apt
# set-up is untouched. Sets APT_O to the options that make apt-get and apt-cache use it, and
# reads the suite's package list.
private_apt() {  # $1 = suite, $2 = work directory, $3 = the suite in words, for errors
  local suite="$1" work="$2"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  cat >"$work/$suite.sources" <<S
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
S
  APT_O=(-o "Dir::Etc::SourceList=$work/$suite.sources" -o Dir::Etc::SourceParts=-
         -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
         -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
  apt-get "${APT_O[@]}" update -qq || die "cannot read $3's package list"
}

install_private_criu() {
  local work="$REPO/.ferry/apt-sid"
  say "fetching CRIU from Debian unstable into $PREFIX (the machine's apt configuration is not touched)"
  rm -rf "$work" "$PREFIX.new"
  mkdir -p "$PREFIX.new"
  private_apt sid "$work" "Debian unstable"
  local o=("${APT_O[@]}")
  # Resolve criu's run-time closure in sid instead of hard-coding it: it moves.
  local pkgs
  pkgs="$(apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
          --no-breaks --no-replaces --no-enhances criu | grep -v '^ ' | grep -v '^<' | sort -u)"
  (cd "$work/debs" && apt-get "${o[@]}" download $pkgs >/dev/null) || die "cannot download: $pkgs"
  local d
  for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$PREFIX.new"; done
  local lib="$PREFIX/usr/lib/x86_64-linux-gnu"
  mkdir -p "$PREFIX.new/bin"
  # runc finds `criu` on PATH and passes it an inherited fd: exec keeps fds intact.
  cat >"$PREFIX.new/bin/criu" <<W
#!/bin/sh
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$PREFIX/usr/sbin/criu" "\$@"
W
  chmod 755 "$PREFIX.new/bin/criu"
  rm -rf "$PREFIX"; mv "$PREFIX.new" "$PREFIX"; rm -rf "$work"
}

runsc_ok() {  # $1 = runsc binary; true when it is a build of 2024 or later (Debian 12's 2022 one cannot
              # checkpoint a listening socket: "endpoint still has waiters upon save")
  local v
  v="$("$1" --version 2>/dev/null | sed -n 's/^runsc version //p')" || return 1
  v="${v#release-}"; v="${v#0.0~}"
  [[ "$v" =~ ^([0-9]{8}) ]] && (( ${BASH_REMATCH[1]} >= 20240101 ))
}

# gVisor's runsc (for pods run with --runtime runsc): one static binary, taken from Debian 13
# (trixie) with a private apt configuration, like CRIU above.
install_private_runsc() {
  local work="$REPO/.ferry/apt-trixie"
  say "fetching runsc from Debian 13 into $RUNSC_PREFIX (the machine's apt configuration is not touched)"
  rm -rf "$work"; mkdir -p "$work/x"
  private_apt trixie "$work" "Debian 13"
  local o=("${APT_O[@]}")
  (cd "$work/debs" && apt-get "${o[@]}" download runsc >/dev/null) || die "cannot download runsc from Debian 13"
  dpkg-deb -x "$work"/debs/runsc_*.deb "$work/x"
  mkdir -p "$RUNSC_PREFIX"
  install -m 755 "$work/x/usr/bin/runsc" "$RUNSC_PREFIX/runsc.new" && mv "$RUNSC_PREFIX/runsc.new" "$RUNSC_PREFIX/runsc"
  rm -rf "$work"
}

runsc_settled() {  # runsc is there, not wanted, or could not be had (runc pods need none of it)
  [[ "${FERRY_NO_RUNSC:-}" == 1 ]] || runsc_ok "$RUNSC_PREFIX/runsc" || [[ -f "$RUNSC_PREFIX/unavailable" ]]
}

ensure_runsc() {
  runsc_settled && return 0
  # a failure here is not fatal: runc pods need no runsc, and runsc pods are then refused with the reason
  if ! ( install_private_runsc ) || ! runsc_ok "$RUNSC_PREFIX/runsc"; then
    rm -rf "$REPO/.ferry/apt-trixie"
    mkdir -p "$RUNSC_PREFIX"
    echo "runsc could not be installed from Debian 13 on $(date -u +%FT%TZ)" >"$RUNSC_PREFIX/unavailable"
    say "warning: no usable runsc (see above); --runtime runsc is refused on this host. Remove $RUNSC_PREFIX/unavailable to retry."
  fi
}

main() {
  if [[ -f "$MARK" && -z "$(missing_pkgs)" ]] && criu_ok "$(cat "$MARK")" && runsc_settled; then
    exit 0
  fi
  install_packages
  local criu=""
  if command -v criu >/dev/null && [[ "$(command -v criu)" != "$PREFIX/bin/criu" ]] && criu_ok criu; then
    criu="$(command -v criu)"
  elif [[ -x "$PREFIX/bin/criu" ]] && criu_ok "$PREFIX/bin/criu"; then
    criu="$PREFIX/bin/criu"
  else
    install_private_criu
    criu_ok "$PREFIX/bin/criu" || die "CRIU from Debian unstable does not pass 'criu check' here; see $PREFIX"
    criu="$PREFIX/bin/criu"
  fi
  ensure_runsc
  mkdir -p "$(dirname "$MARK")"
  echo "$criu" >"$MARK"
  say "ready: runc $(runc --version | sed -n 's/^runc version //p'), CRIU $("$criu" --version | sed -n 's/^Version: *//p') at $criu, runsc $("$RUNSC_PREFIX/runsc" --version 2>/dev/null | sed -n 's/^runsc version //p' || true)"
}
main "$@"
