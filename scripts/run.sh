#!/usr/bin/env bash
# Entry point of every npm script that must work on a fresh clone: installs dependencies
# when node_modules is missing, generates the Prisma client when the schema changed, then
# runs the TypeScript command with SWC.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1

if [ ! -d node_modules ] || [ ! -e node_modules/.bin/prisma ]; then
  echo "installing dependencies (npm ci)…" >&2
  npm ci --no-audit --no-fund >&2
fi

client=node_modules/.prisma/client/index.js
if [ ! -f "$client" ] || [ prisma/schema.prisma -nt "$client" ]; then
  # generate needs any syntactically valid DATABASE_URL; it does not connect.
  DATABASE_URL="${DATABASE_URL:-postgresql://unused@127.0.0.1:1/unused}" \
    node_modules/.bin/prisma generate >/dev/null 2>&1 || {
      echo "prisma generate failed:" >&2
      DATABASE_URL="${DATABASE_URL:-postgresql://unused@127.0.0.1:1/unused}" node_modules/.bin/prisma generate >&2
      exit 1
    }
fi

cmd="$1"; shift
case "$cmd" in
  start)        exec node -r ./scripts/register.js scripts/start.ts "$@" ;;
  test)         exec node -r ./scripts/register.js scripts/test.ts "$@" ;;
  check)        exec node -r ./scripts/register.js scripts/static-checks.ts "$@" ;;
  demo)         exec node -r ./scripts/register.js scripts/demo.ts "$@" ;;
  # the worker's V8 flags (libs/config worker-node-flags.ts): the in-process decode loops
  # are the benchmarks' baselines for the workers
  bench)        exec node --initial-old-space-size=256 -r ./scripts/register.js bench/run.ts "$@" ;;
  generate)     exec node -r ./scripts/register.js scripts/generate.ts "$@" ;;
  schema:print) exec node -r ./scripts/register.js apps/api/src/schema-print.ts "$@" ;;
  audit:verify) exec node -r ./scripts/register.js scripts/audit-verify.ts "$@" ;;
  billing:export)    exec node -r ./scripts/register.js scripts/billing-export.ts "$@" ;;
  billing:reconcile) exec node -r ./scripts/register.js scripts/billing-reconcile.ts "$@" ;;
  *) echo "unknown command: $cmd" >&2; exit 2 ;;
esac
