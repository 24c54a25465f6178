#!/bin/sh
# Runs once while the image is built: gives it the `pigeonhole` command that the Kubernetes CronJob
# and Jobs run. The Bento ships the project's code under $BENTO_PATH/src, not an installed package.
set -eu
bin="${PIGEONHOLE_BIN_DIR:-/usr/local/bin}"
cat > "$bin/pigeonhole" <<'SHIM'
#!/bin/sh
export PYTHONPATH="$BENTO_PATH/src${PYTHONPATH:+:$PYTHONPATH}"
exec python -m pigeonhole.cli "$@"
SHIM
chmod 0755 "$bin/pigeonhole"
