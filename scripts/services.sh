#!/usr/bin/env bash
# A throwaway PostgreSQL cluster and Redis server on loopback, for the tests' second run
# (library, jobs and API on PostgreSQL + Redis) and for trying several workers on one box.
#
#   scripts/services.sh start    install what is missing (Debian's postgresql, redis-server),
#                                then start both; prints the URLs (idempotent)
#   scripts/services.sh stop     stop both (the data stays until `clean`)
#   scripts/services.sh status   say what runs, exit 1 if either is down
#   scripts/services.sh env      print CHARSTUDIO_TEST_DATABASE_URL=... and ..._QUEUE_URL=...
#   scripts/services.sh clean    stop both and delete their data
#
# Settings (environment): CHARSTUDIO_SERVICES_DIR (default ./.services),
# CHARSTUDIO_PG_PORT (55432), CHARSTUDIO_REDIS_PORT (56379), CHARSTUDIO_APT_LOCK_WAIT_S (120),
# CHARSTUDIO_PG_BIN (a PostgreSQL bin folder; default Debian's newest under
# /usr/lib/postgresql), CHARSTUDIO_REDIS_SERVER (default redis-server on PATH).
# The cluster trusts every loopback connection and runs with fsync off: it is for tests,
# never for a library you keep (README, "Several machines", says how to set up real ones).
#
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user that
# Debian's package creates (or a `charstudio-pg` system user made here), and when that user
# cannot reach the project folder (a private parent such as /root) its data goes to
# /tmp/charstudio-pg-<id> instead, which the script says.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
dir=${CHARSTUDIO_SERVICES_DIR:-$repo/.services}
pg_port=${CHARSTUDIO_PG_PORT:-55432}
redis_port=${CHARSTUDIO_REDIS_PORT:-56379}
wait_s=${CHARSTUDIO_APT_LOCK_WAIT_S:-120}
pg_user=charstudio # the cluster's superuser (trust auth on loopback)
pg_db=charstudio

say() { echo "services: $*" >&2; }
die() {
  say "$*"
  exit 1
}

database_url="postgresql+psycopg://$pg_user@127.0.0.1:$pg_port/$pg_db"
queue_url="redis://127.0.0.1:$redis_port/0"

pg_bin() {
  local found
  if [ -n "${CHARSTUDIO_PG_BIN:-}" ]; then # a PostgreSQL of your own (its bin folder)
    [ -x "$CHARSTUDIO_PG_BIN/initdb" ] && echo "$CHARSTUDIO_PG_BIN"
    return 0
  fi
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then
    echo "$found"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

redis_bin() {
  if [ -n "${CHARSTUDIO_REDIS_SERVER:-}" ]; then # a redis-server of your own
    [ -x "$CHARSTUDIO_REDIS_SERVER" ] && echo "$CHARSTUDIO_REDIS_SERVER"
    return 0
  fi
  command -v redis-server 2>/dev/null || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; } || true
}

install_missing() {
  local packages=()
  [ -n "$(pg_bin)" ] || packages+=(postgresql)
  [ -n "$(redis_bin)" ] || packages+=(redis-server)
  [ ${#packages[@]} -eq 0 ] && return 0
  local how="sudo apt-get update && sudo apt-get install -y ${packages[*]}"
  command -v apt-get >/dev/null 2>&1 || die "${packages[*]} missing and there is no apt-get: install them, then run this again"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      die "${packages[*]} missing and this user cannot install packages; run: $how"
    fi
  fi
  say "installing ${packages[*]} (waiting up to ${wait_s}s for the dpkg lock)"
  # DPkg::Lock::Timeout waits for another apt/dpkg instead of failing at once.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$wait_s" update -qq \
    && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$wait_s" \
      install -y -qq --no-install-recommends "${packages[@]}" >/dev/null \
    || die "could not install ${packages[*]} (another apt may hold the lock, or no network); run: $how"
  [ -n "$(pg_bin)" ] || die "postgresql installed but no initdb found under /usr/lib/postgresql"
  [ -n "$(redis_bin)" ] || die "redis-server installed but not found on PATH"
}

# -- who runs PostgreSQL, and where its data lives ------------------------------------------
run_as=""
if [ "$(id -u)" = 0 ]; then
  if getent passwd postgres >/dev/null 2>&1; then run_as=postgres; else run_as=charstudio-pg; fi
fi

as_pg() {
  if [ -n "$run_as" ]; then runuser -u "$run_as" -- "$@"; else "$@"; fi
}

pgdata_file="$dir/pgdata" # where the cluster is, when it is not $dir/pg

pgdata() {
  if [ -f "$pgdata_file" ]; then cat "$pgdata_file"; else echo "$dir/pg"; fi
}

prepare_pgdata() {
  if [ "$run_as" = charstudio-pg ] && ! getent passwd charstudio-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin charstudio-pg \
      || die "cannot create the charstudio-pg user that runs PostgreSQL as root's stand-in"
  fi
  local data
  data=$(pgdata)
  mkdir -p "$data"
  chmod 700 "$data"
  [ -n "$run_as" ] && chown "$run_as" "$data"
  if ! as_pg test -w "$data"; then
    local alt="/tmp/charstudio-pg-$(printf %s "$repo" | cksum | cut -d' ' -f1)"
    say "user $run_as cannot reach $data (a parent folder is private); the cluster goes to $alt"
    rmdir "$data" 2>/dev/null || true
    mkdir -p "$alt"
    chmod 700 "$alt"
    chown "$run_as" "$alt"
    echo "$alt" >"$pgdata_file"
  fi
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pg_running() { [ -n "$(pg_bin)" ] && [ -f "$(pgdata)/PG_VERSION" ] && as_pg "$(pg_bin)/pg_ctl" -D "$(pgdata)" status >/dev/null 2>&1; }

start_pg() {
  local bin data
  bin=$(pg_bin)
  if pg_running; then
    say "PostgreSQL already runs on 127.0.0.1:$pg_port"
  else
    port_taken "$pg_port" && die "port $pg_port is taken by another program; set CHARSTUDIO_PG_PORT to a free one"
    prepare_pgdata
    data=$(pgdata)
    if [ ! -f "$data/PG_VERSION" ]; then
      say "creating a PostgreSQL cluster in $data"
      as_pg "$bin/initdb" -D "$data" -U "$pg_user" --auth=trust --encoding=UTF8 --no-locale \
        --no-sync >"$dir/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$dir/initdb.log")"
      # Tests only: nothing here must survive a crash, so durability is traded for speed.
      cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = ''
max_connections = 300
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    sed -i "s/^port = .*/port = $pg_port/" "$data/postgresql.conf"
    as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null \
      || die "PostgreSQL did not start: $(tail -n 5 "$data/server.log" 2>/dev/null)"
    say "PostgreSQL $("$bin/postgres" -V | awk '{print $3}') on 127.0.0.1:$pg_port ($data)"
  fi
  local exists
  exists=$("$bin/psql" -h 127.0.0.1 -p "$pg_port" -U "$pg_user" -d postgres -Atc \
    "SELECT 1 FROM pg_database WHERE datname = '$pg_db'")
  [ "$exists" = 1 ] || "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U "$pg_user" -d postgres -qc \
    "CREATE DATABASE $pg_db" >/dev/null
}

redis_pid() { cat "$dir/redis/redis.pid" 2>/dev/null || true; }
# A pid file left by a killed run may name a pid reused since: it must answer PING too.
redis_running() { local pid; pid=$(redis_pid); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && redis_ping 2>/dev/null; }

redis_ping() {
  local reply=""
  exec 3<>"/dev/tcp/127.0.0.1/$redis_port" || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3>&-
  [ "${reply%$'\r'}" = "+PONG" ]
}

start_redis() {
  if redis_running; then
    say "Redis already runs on 127.0.0.1:$redis_port"
    return 0
  fi
  port_taken "$redis_port" && die "port $redis_port is taken by another program; set CHARSTUDIO_REDIS_PORT to a free one"
  mkdir -p "$dir/redis"
  "$(redis_bin)" --bind 127.0.0.1 --port "$redis_port" --dir "$dir/redis" --daemonize yes \
    --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --save "" \
    --appendonly no >/dev/null || die "redis-server did not start: $(tail -n 5 "$dir/redis/redis.log")"
  local i
  for i in $(seq 1 100); do
    redis_ping 2>/dev/null && break
    sleep 0.1
  done
  redis_ping 2>/dev/null || die "Redis does not answer on 127.0.0.1:$redis_port: $(tail -n 5 "$dir/redis/redis.log")"
  say "Redis $("$(redis_bin)" --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$redis_port"
}

stop_all() {
  if pg_running; then
    as_pg "$(pg_bin)/pg_ctl" -D "$(pgdata)" -m fast -w stop >/dev/null && say "PostgreSQL stopped"
  fi
  if redis_running; then
    local pid i
    pid=$(redis_pid)
    kill "$pid"
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    rm -f "$dir/redis/redis.pid"
    say "Redis stopped"
  fi
}

print_env() {
  echo "CHARSTUDIO_TEST_DATABASE_URL=$database_url"
  echo "CHARSTUDIO_TEST_QUEUE_URL=$queue_url"
}

case "${1:-}" in
  start)
    mkdir -p "$dir"
    install_missing
    start_pg
    start_redis
    print_env
    ;;
  stop) stop_all ;;
  status)
    code=0
    if pg_running; then say "PostgreSQL runs: $database_url"; else say "PostgreSQL is not running" && code=1; fi
    if redis_running; then say "Redis runs: $queue_url"; else say "Redis is not running" && code=1; fi
    exit $code
    ;;
  env) print_env ;;
  clean)
    stop_all
    data=$(pgdata)
    rm -rf "$dir"
    [ "$data" = "$dir/pg" ] || rm -rf "$data"
    say "removed $dir"
    ;;
  *)
    echo "usage: scripts/services.sh start|stop|status|env|clean" >&2
    exit 2
    ;;
esac
