#!/bin/bash -e
# pi-gen: the camgate app layer, from deploy/raspberrypi/app/setup.sh: the same script
# install.sh runs on a live Pi and images/debian/build.sh runs for the Debian twin.
# The repository is mounted at /camgate in the pi-gen build container (build.sh), and
# camgate's wheels built from it are in $CAMGATE_WHEELS (the config).
if ! ls "${CAMGATE_WHEELS:?set by images/raspios/config}"/camgate-*.whl >/dev/null 2>&1; then
    echo "stage-camgate: no camgate wheel in ${CAMGATE_WHEELS}: run images/raspios/build.sh" >&2
    exit 1
fi
/camgate/deploy/raspberrypi/app/setup.sh --root "${ROOTFS_DIR}" --wheels "${CAMGATE_WHEELS}"
# The first user's (random) password is locked: SSH keys or nothing.
on_chroot <<CHROOT
passwd --lock "${FIRST_USER_NAME}"
CHROOT
