#!/usr/bin/env bash
# Run pi-gen's own configuration checks on images/raspios/config, without its build (which
# needs the Raspberry Pi package archive): pi-gen's build.sh with our config, up to and
# including its validation (host tools, arm64 emulation, FIRST_USER_NAME/FIRST_USER_PASS,
# WPA_PASSWORD, PUBKEY_ONLY_SSH...), its stages replaced by one skipped stage. Also checks
# that our stage is where the config says and that pi-gen's Wi-Fi country step will run.
#
#   sudo images/raspios/check-config.sh [PI_GEN_DIR]   (default: build/pi-gen, cloned
#                                                      at PI_GEN_REF as build.sh does)
# Needs root (pi-gen's build.sh insists) and pi-gen's host tools (its `depends` file).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PI_GEN=${1:-$REPO/build/pi-gen}
PI_GEN_REF=${PI_GEN_REF:-2024-11-19-raspios-bookworm-arm64}
die() { echo "check-config: FAILED: $*" >&2; exit 1; }

if [[ ! -d $PI_GEN ]]; then
    git clone -q --depth 1 --branch "$PI_GEN_REF" https://github.com/RPi-Distro/pi-gen.git "$PI_GEN"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy: pi-gen writes its work/ and log beside build.sh.
rsync -a --exclude=/work --exclude=/deploy --exclude=/.git "$PI_GEN/" "$work/pi-gen/"
cp "$REPO/images/raspios/config" "$work/pi-gen/config"
mkdir -p "$work/skipped-stage"
touch "$work/skipped-stage/SKIP" "$work/skipped-stage/SKIP_IMAGES"
# Read after the config (build.sh -c): the stages, not the settings, are replaced.
echo "STAGE_LIST=$work/skipped-stage" >"$work/only-checks"

# Our stage as the build container will see it (/camgate is this checkout).
# shellcheck disable=SC1091
stages=$(set +u; source "$work/pi-gen/config"; echo "$STAGE_LIST")
for stage in $stages; do
    case $stage in
        /camgate/*) dir=$REPO/${stage#/camgate/} ;;
        *) dir=$work/pi-gen/$stage ;;
    esac
    [[ -d $dir ]] || die "STAGE_LIST names $stage, which does not exist"
done
# shellcheck disable=SC1091
country=$(set +u; source "$work/pi-gen/config"; echo "${WPA_COUNTRY:-}")
[[ $country =~ ^[A-Z]{2}$ ]] || die "WPA_COUNTRY is not set: pi-gen would switch Wi-Fi off"

log=$work/pi-gen.log
if ! (cd "$work/pi-gen" && ./build.sh -c "$work/only-checks") >"$log" 2>&1; then
    cat "$log" >&2
    die "pi-gen's build.sh refused the configuration"
fi
grep -q "End $work/pi-gen" "$log" || { cat "$log" >&2; die "pi-gen's build.sh did not finish"; }
grep -E 'Checking|User rename|WARNING' "$log" | sed 's/^/  pi-gen: /' || true
echo "check-config: pi-gen $(git -C "$PI_GEN" describe --tags 2>/dev/null || echo "($PI_GEN)") accepts images/raspios/config"
