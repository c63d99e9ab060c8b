#!/usr/bin/env bash
# Soak: mixed load across several Gatehouse replicas for a long time, RSS sampled.
#
#   bench/soak.sh                       # 30 minutes, 2 replicas, RSS every 60 s
#   SOAK_SECONDS=120 SOAK_SAMPLE=10 bench/soak.sh   # the short version
#
# Everything runs on loopback: gatehouse-mock (the vendor), a private redis-server, a
# database made on the machine's Postgres (127.0.0.1:5432, user postgres), N replicas
# over both, nginx round-robin in front. Each worker loops over: chat, streamed chat,
# Responses, a chat whose model calls an MCP tool that the gateway executes (tool loop),
# and MCP tools/call on one session (resumed by whichever replica nginx picks). Bounded:
# it stops by itself after SOAK_SECONDS. Prints a Markdown table (RSS per replica per
# sample), request and error counts, and spend rows against model requests served.
#
# Settings (environment): SOAK_SECONDS (1800), SOAK_SAMPLE (60), SOAK_REPLICAS (2),
# SOAK_WORKERS (4), BIN_DIR (target/release, else target/debug), GATEHOUSE_NPM_PREFIX
# (server-everything, from scripts/install-peers).
set -euo pipefail

SECONDS_TOTAL=${SOAK_SECONDS:-1800}
SAMPLE=${SOAK_SAMPLE:-60}
REPLICAS=${SOAK_REPLICAS:-2}
WORKERS=${SOAK_WORKERS:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=${BIN_DIR:-}
if [ -z "$BIN_DIR" ]; then
  if [ -x "$ROOT/target/release/gatehouse" ]; then BIN_DIR=$ROOT/target/release; else BIN_DIR=$ROOT/target/debug; fi
fi
NPM=${GATEHOUSE_NPM_PREFIX:-$HOME/.cache/gatehouse/npm}
EVERYTHING=$NPM/node_modules/@modelcontextprotocol/server-everything/dist/index.js
for need in "$BIN_DIR/gatehouse" "$BIN_DIR/gatehouse-mock" "$EVERYTHING"; do
  [ -e "$need" ] || { echo "soak: missing $need (cargo build --release -p gatehouse -p gatehouse-testkit; scripts/install-peers)" >&2; exit 2; }
done
for tool in redis-server nginx psql curl; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "soak: $tool is not installed" >&2; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d /tmp/gatehouse-soak.XXXXXX)
DB=gh_soak_$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qtAc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_url() { # wait until a "listening on http://..." line shows in $1; print the URL
  for _ in $(seq 200); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$1" 2>/dev/null | head -1 | sed 's/listening on //')
    [ -n "$url" ] && { echo "$url"; return 0; }
    sleep 0.1
  done
  echo "soak: no listening line in $1" >&2; cat "$1" >&2; exit 2
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

"$BIN_DIR/gatehouse-mock" --port 0 >"$WORK/mock.log" 2>&1 & PIDS+=($!)
MOCK=$(wait_url "$WORK/mock.log")
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 & PIDS+=($!)
psql -h 127.0.0.1 -U postgres -d postgres -qtAc "CREATE DATABASE $DB" >/dev/null

MASTER=sk-master-soak
cat >"$WORK/config.yaml" <<EOF
model_list:
  - model_name: gpt
    litellm_params: {model: openai/gpt-4o-mini, api_base: "$MOCK/v1", api_key: sk-up}
    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
  - model_name: gpt-tools
    litellm_params: {model: openai/gpt-4o-mini, api_base: "$MOCK/v1", api_key: sk-up}
    model_info: {mcp_servers: [ev], input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
mcp_servers:
  ev:
    command: node
    args: ["$EVERYTHING", "stdio"]
general_settings:
  master_key: $MASTER
  database_url: "postgres://postgres@127.0.0.1:5432/$DB"
router_settings:
  redis_url: "redis://127.0.0.1:$REDIS_PORT"
EOF

GW_PIDS=()
UPSTREAMS=""
for i in $(seq "$REPLICAS"); do
  GATEHOUSE_SPOOL_DIR="$WORK/spool" "$BIN_DIR/gatehouse" --config "$WORK/config.yaml" --port 0 >"$WORK/gw$i.log" 2>&1 &
  PIDS+=($!); GW_PIDS+=($!)
  url=$(wait_url "$WORK/gw$i.log")
  UPSTREAMS+="    server ${url#http://};"$'\n'
done
LB_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  upstream replicas {
$UPSTREAMS    keepalive 16;
  }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / {
      proxy_pass http://replicas; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_read_timeout 60s;
    }
  }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & PIDS+=($!)
LB=http://127.0.0.1:$LB_PORT
for _ in $(seq 100); do curl -s -o /dev/null "$LB/health/liveliness" && break; sleep 0.1; done

KEY=$(curl -sf "$LB/key/generate" -H "authorization: Bearer $MASTER" -H 'content-type: application/json' \
  -d '{"key_alias":"soak","rpm_limit":100000}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
sleep 1 # the key reaches every replica (notification)

# One worker: loops until the deadline, appends "kind status" lines to its own file.
worker() {
  local id=$1 deadline=$2 out="$WORK/w$1.txt" sid
  local auth="authorization: Bearer $KEY" json='content-type: application/json' accept='accept: application/json, text/event-stream'
  sid=$(curl -s -D - -o /dev/null "$LB/mcp" -H "$auth" -H "$json" -H "$accept" \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"soak","version":"1"}}}' \
    | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
  local n=0
  while [ "$(date +%s)" -lt "$deadline" ]; do
    n=$((n + 1))
    s=$(curl -s -o /dev/null -w '%{http_code}' "$LB/v1/chat/completions" -H "$auth" -H "$json" \
      -d '{"model":"gpt","messages":[{"role":"user","content":"soak '"$id-$n"'"}]}')
    echo "chat $s" >>"$out"
    body=$(curl -s -N "$LB/v1/chat/completions" -H "$auth" -H "$json" \
      -d '{"model":"gpt","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"stream"}]}')
    case "$body" in *"[DONE]"*) echo "stream 200" >>"$out" ;; *) echo "stream err" >>"$out" ;; esac
    s=$(curl -s -o /dev/null -w '%{http_code}' "$LB/v1/responses" -H "$auth" -H "$json" \
      -d '{"model":"gpt","input":"responses","store":false}')
    echo "responses $s" >>"$out"
    body=$(curl -s "$LB/v1/chat/completions" -H "$auth" -H "$json" \
      -d '{"model":"gpt-tools","messages":[{"role":"user","content":"CALL ev-echo {\"message\":\"soak\"}"}]}')
    case "$body" in *"Echo: soak"*) echo "tool_loop 200" >>"$out" ;; *) echo "tool_loop err" >>"$out" ;; esac
    body=$(curl -s "$LB/mcp" -H "$auth" -H "$json" -H "$accept" -H "mcp-session-id: $sid" \
      -d '{"jsonrpc":"2.0","id":'"$n"',"method":"tools/call","params":{"name":"ev-echo","arguments":{"message":"m'"$n"'"}}}')
    case "$body" in *"Echo: m$n"*) echo "mcp 200" >>"$out" ;; *) echo "mcp err" >>"$out" ;; esac
  done
}

START=$(date +%s)
DEADLINE=$((START + SECONDS_TOTAL))
for w in $(seq "$WORKERS"); do worker "$w" "$DEADLINE" & PIDS+=($!); done

header="| minute |"; rule="|---|"
for i in $(seq "$REPLICAS"); do header+=" replica $i RSS (MB) |"; rule+="---|"; done
echo "$header" >"$WORK/rss.md"; echo "$rule" >>"$WORK/rss.md"
sample() {
  local row="| $(awk -v s="$(( $(date +%s) - START ))" 'BEGIN {printf "%.1f", s/60}') |"
  for p in "${GW_PIDS[@]}"; do row+=" $(awk -v k="$(rss_kb "$p")" 'BEGIN {printf "%.1f", k/1024}') |"; done
  echo "$row" >>"$WORK/rss.md"
}
sample
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
  sleep "$SAMPLE"
  sample
done
sleep 5 # last requests finish
for p in "${GW_PIDS[@]}"; do kill -TERM "$p"; done # SIGTERM flushes the spend writers
for p in "${GW_PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.2; done; done

echo
cat "$WORK/rss.md"
echo
cat "$WORK"/w*.txt | sort | uniq -c | awk '{printf "%-10s %-4s %d\n", $2, $3, $1}'
served=$(cat "$WORK"/w*.txt | grep -cE '^(chat|stream|responses|tool_loop) 200$' || true)
errors=$(cat "$WORK"/w*.txt | grep -vcE ' 200$' || true)
rows=$(psql -h 127.0.0.1 -U postgres -d "$DB" -qtAc "SELECT COUNT(*) FROM gatehouse_spend_logs")
echo "model requests served: $served; spend rows: $rows; errors: $errors"
[ "$errors" -eq 0 ] && [ "$rows" -ge "$served" ]
