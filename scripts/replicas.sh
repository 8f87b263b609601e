#!/usr/bin/env bash
# Two replicas of examples/chat.py sharing one Redis: see examples/replicas/README.md.
#
#   make replicas            (or: bash scripts/replicas.sh, once the redis extra is installed)
#
# Starts, all on 127.0.0.1 only:
#   redis-server on REDIS_PORT (6390), nothing kept on disk (--save '' --appendonly no),
#   its files in a temporary directory removed at the end;
#   `streamlit run $APP` twice, on PORT1 (8501) and PORT2 (8502), with
#   SERVER_STATE_URL=redis://127.0.0.1:$REDIS_PORT/0 SERVER_STATE_NAMESPACE=$NAMESPACE.
# Other overrides: APP (examples/chat.py), PYTHON (.venv/bin/python), REDIS_SERVER (path),
# STARTUP_TIMEOUT (60 s per process).
# Then reads commands from the terminal: `stop` / `start` redis-server, `quit`.
# On exit (quit, Ctrl-C, a replica dying, an error) all three are stopped, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT="${REDIS_PORT:-6390}"
PORT1="${PORT1:-8501}"
PORT2="${PORT2:-8502}"
NAMESPACE="${SERVER_STATE_NAMESPACE:-replicas-demo}"
APP="${APP:-examples/chat.py}"
PY="${PYTHON:-.venv/bin/python}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}" # seconds

REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || true)}"
if [ -z "$REDIS_SERVER" ] && [ -x /usr/bin/redis-server ]; then REDIS_SERVER=/usr/bin/redis-server; fi
if [ -z "$REDIS_SERVER" ] || [ ! -x "$REDIS_SERVER" ]; then
    echo "replicas: redis-server${REDIS_SERVER:+ ($REDIS_SERVER)} is not installed. Install it, then run this again:" >&2
    echo "    sudo apt-get install redis-server     # Debian/Ubuntu" >&2
    echo "(the Debian package also starts a system Redis on 6379; this demo uses its own on $REDIS_PORT)" >&2
    exit 1
fi
if [ ! -x "$PY" ]; then
    echo "replicas: $PY not found; run \`make replicas\` (it creates .venv with the redis extra)." >&2
    exit 1
fi
if [ ! -f "$APP" ]; then
    echo "replicas: $APP not found." >&2
    exit 1
fi

port_free() {
    "$PY" -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}

for port in "$REDIS_PORT" "$PORT1" "$PORT2"; do
    if ! port_free "$port"; then
        echo "replicas: port $port on 127.0.0.1 is in use. Pick others, e.g.:" >&2
        echo "    REDIS_PORT=6391 PORT1=8511 PORT2=8512 make replicas" >&2
        exit 1
    fi
done

TMP="$(mktemp -d -t server-state-replicas.XXXXXX)"
REDIS_PID=""
APP_PIDS=()
CLEANED=0

# Stop one process by PID: SIGTERM, SIGKILL if it is still there after 10 s.
stop_pid() {
    local pid="$1" i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1 # polling for the process to be gone, with a deadline
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    trap - INT TERM
    local pid
    if [ -n "$REDIS_PID" ] || [ ${#APP_PIDS[@]} -gt 0 ]; then
        echo
        echo "Stopping the replicas and redis-server..."
    fi
    for pid in "${APP_PIDS[@]}"; do stop_pid "$pid"; done
    stop_pid "$REDIS_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log_tail() {
    echo "--- last lines of $1 ---" >&2
    tail -n 30 "$1" >&2 || true
}

# Poll `$@` until it succeeds, while process $pid lives, for STARTUP_TIMEOUT seconds.
wait_until() {
    local what="$1" pid="$2" log="$3"
    shift 3
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "replicas: $what exited before it was ready." >&2
            log_tail "$log"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "replicas: $what not ready after ${STARTUP_TIMEOUT}s." >&2
            log_tail "$log"
            return 1
        fi
        sleep 0.1 # polling another process's readiness, with a deadline
    done
}

redis_ping() {
    "$PY" -c 'import sys, redis; sys.exit(0 if redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=1, retry=None).ping() else 1)' "$REDIS_PORT"
}

http_ok() {
    "$PY" -c 'import sys, urllib.request; sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).read().strip() == b"ok" else 1)' "$1"
}

start_redis() {
    # --save '' --appendonly no: this Redis keeps nothing on disk, so stopping it
    # empties the chat (see the README); a real deployment would use persistence.
    "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
        --save '' --appendonly no --daemonize no --dir "$TMP" \
        >>"$TMP/redis.log" 2>&1 </dev/null &
    REDIS_PID=$!
    wait_until "redis-server" "$REDIS_PID" "$TMP/redis.log" redis_ping
    echo "redis-server: 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"
}

start_replica() {
    local port="$1" log="$TMP/replica-$1.log" pid
    SERVER_STATE_URL="redis://127.0.0.1:$REDIS_PORT/0" SERVER_STATE_NAMESPACE="$NAMESPACE" \
        "$PY" -m streamlit run "$APP" \
        --server.address 127.0.0.1 --server.port "$port" \
        --server.headless true --browser.gatherUsageStats false \
        >"$log" 2>&1 </dev/null &
    pid=$!
    APP_PIDS+=("$pid")
    wait_until "the replica on port $port" "$pid" "$log" http_ok "http://127.0.0.1:$port/_stcore/health"
    echo "replica:      http://127.0.0.1:$port (pid $pid, log $log)"
}

start_redis
start_replica "$PORT1"
start_replica "$PORT2"

cat <<EOF

Open one tab on each replica:
    http://127.0.0.1:$PORT1
    http://127.0.0.1:$PORT2
A message sent in one shows in the other.

Type a command and press Enter:
    stop    stop redis-server (reads still show; a send fails after ~10 s with an error)
    start   start redis-server again (empty: this demo's Redis keeps nothing on disk)
    quit    stop everything (Ctrl-C does too)
EOF

replicas_alive() {
    local pid
    for pid in "${APP_PIDS[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "replicas: the replica with pid $pid exited." >&2
            for log in "$TMP"/replica-*.log; do log_tail "$log"; done
            return 1
        fi
    done
    if [ -n "$REDIS_PID" ] && ! kill -0 "$REDIS_PID" 2>/dev/null; then
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
        echo "replicas: redis-server exited by itself; type 'start' to start it again." >&2
        log_tail "$TMP/redis.log"
    fi
}

interactive=1
while replicas_alive; do
    if [ "$interactive" = 1 ]; then
        status=0
        read -r -t 1 cmd || status=$?
        if [ "$status" -gt 128 ]; then continue; fi # no input this second: check the replicas again
        if [ "$status" -ne 0 ]; then
            interactive=0 # stdin closed: just keep running until Ctrl-C or a replica exits
            continue
        fi
        case "$cmd" in
            stop)
                if [ -n "$REDIS_PID" ]; then
                    stop_pid "$REDIS_PID"
                    REDIS_PID=""
                    echo "redis-server stopped. Try sending a message; then type 'start'."
                else
                    echo "redis-server is already stopped."
                fi
                ;;
            start)
                if [ -n "$REDIS_PID" ]; then echo "redis-server is already running."; else start_redis; fi
                ;;
            quit | exit | q) exit 0 ;;
            "") ;;
            *) echo "commands: stop, start, quit" ;;
        esac
    else
        wait -n "${APP_PIDS[@]}" || true
    fi
done
exit 1
