#!/bin/bash -e
# pi-gen: the camgate app layer, from deploy/raspberrypi/app/setup.sh: the same script
# install.sh runs on a live Pi and images/debian/build.sh runs for the Debian twin.
# The repository is mounted at /camgate in the pi-gen build container (build.sh).
/camgate/deploy/raspberrypi/app/setup.sh --root "${ROOTFS_DIR}" ${CAMGATE_WHEELS:+--wheels "${CAMGATE_WHEELS}"}
on_chroot <<CHROOT
passwd --lock "${FIRST_USER_NAME}"
CHROOT
