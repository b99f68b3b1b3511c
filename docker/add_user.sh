#!/usr/bin/env bash
# Make the calling user (name, uid, gid) exist in the image so the container can run as them (docker/Dockerfile runs
# this as root at build time; tests/e2e/test_docker.py runs it against stand-in account tools). Usage:
#   add_user.sh NAME UID GID
# - uid 0: nothing to do (root).
# - the gid: an existing group with that gid is used as it is; else a group NAME is created with it, or, when a
#   group NAME already exists with another gid, that group's gid is changed.
# - the uid: an image user that holds it under another name (Ubuntu 24.04's `ubuntu` holds 1000) is removed first;
#   a user NAME that already exists with another uid (the host name is also an image user) is moved to the uid and
#   gid (usermod re-owns its home); otherwise the user is created. `--no-log-init` keeps a large uid from growing
#   /var/log/faillog and lastlog into gigabytes of sparse file inside the image.
set -euo pipefail
name="$1" uid="$2" gid="$3"
if [ "${uid}" = "0" ]; then
  exit 0
fi
if ! getent group "${gid}" > /dev/null; then
  if getent group "${name}" > /dev/null; then
    groupmod --gid "${gid}" "${name}"
  else
    groupadd --gid "${gid}" "${name}"
  fi
fi
holder="$(getent passwd "${uid}" | cut -d: -f1 || true)"
if [ -n "${holder}" ] && [ "${holder}" != "${name}" ]; then
  userdel --remove "${holder}" 2> /dev/null || userdel "${holder}"
fi
if getent passwd "${name}" > /dev/null; then
  usermod --uid "${uid}" --gid "${gid}" --shell /bin/bash "${name}"     # its home (if any) follows the uid
else
  useradd --no-log-init --create-home --uid "${uid}" --gid "${gid}" --shell /bin/bash "${name}"
fi
