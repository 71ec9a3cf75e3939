#!/usr/bin/env bash
# The digest of everything that goes into the image recipes (images/, deploy/), as git
# sees it; images/tested.sha256 holds the one `make image-test` last passed with.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
git ls-files -s -- images deploy ':!images/tested.sha256' | sha256sum | cut -d' ' -f1
