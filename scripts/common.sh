# Shared by scripts/run.sh and scripts/test.sh: installs what the build needs
# on Debian 12, only when it is missing.
# shellcheck shell=bash

WEFT_APT_PACKAGES=(
  g++ cmake ninja-build make pkg-config
  libboost1.81-dev libsimdjson-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libssl-dev zlib1g-dev
  libpq-dev libhiredis-dev libjwt-dev
  emscripten
)
# Only the tests (and the regional mode of scripts/cluster.sh) need these:
# the scale-out tests start a real PostgreSQL and a real Redis.
WEFT_TEST_PACKAGES=(chromium curl postgresql redis-server)

# node (20 on the project's machines; Debian's nodejs otherwise) runs the
# web client's tests and tooling.
weft_ensure_node() {
  if ! command -v node >/dev/null 2>&1; then
    weft_install_packages nodejs npm
  fi
}

# Builds web_client/dist (npm ci only when node_modules is missing or older
# than the lockfile: npm writes node_modules/.package-lock.json at each
# install, so a lockfile changed since, by a pull or a new tool, reinstalls).
weft_build_web_client() {
  weft_ensure_node
  export NODE_PATH=/usr/share/nodejs   # Debian's emscripten needs its acorn
  (cd web_client && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } &&
    ./build.sh >/dev/null)
}

weft_install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "==> installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Configures the CMake build directory $1 with Ninja (the rest of the
# arguments go to cmake). Ninja compiles a target's objects while the
# libraries it links are still being built, which keeps both cores of a small
# machine busy; a directory configured earlier with another generator starts
# over (CMake cannot switch generators in place).
weft_configure() {
  local dir=$1
  shift
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
}

weft_jobs() {
  nproc 2>/dev/null || echo 2
}
