#!/usr/bin/env bash
# CI gate for a migration plan kept in version control: import the YAML plan, dry-run it on
# the Celery workers, wait for the run, read its report, and fail the pipeline on a Fail
# verdict. Needs curl and python3 (JSON only: nothing of the application is imported).
#
#   MP_URL=https://planner.example.com MP_TOKEN=<personal access token> \
#       bash docs/ci-pipeline.sh plans/legacy-crm.yaml
#
# Optional: MP_TARGET (target system name; default: the plan's), MP_TIMEOUT (seconds to wait
# for the run and its report, default 1800), MP_POLL (seconds between polls, default 2).
# The token's owner needs a role that may edit plans and launch dry runs (analyst).
# Exit codes: 0 verdict Pass or Pass with warnings · 1 verdict Fail, or the run failed or was
# cancelled · 2 the API refused a request (bad YAML, unknown column, role) · 3 unreachable,
# unexpected answer or timeout.
set -euo pipefail

plan_file=${1:?usage: MP_URL=… MP_TOKEN=… bash ci-pipeline.sh plan.yaml}
: "${MP_URL:?set MP_URL to the base URL of the planner}"
: "${MP_TOKEN:?set MP_TOKEN to a personal access token (API tokens page)}"
timeout=${MP_TIMEOUT:-1800}
poll=${MP_POLL:-2}
base=${MP_URL%/}
body=$(mktemp)
trap 'rm -f "$body"' EXIT

say() { printf '[ci-pipeline] %s\n' "$*" >&2; }

# json KEY... : the value at that key path of the JSON on stdin (no evaluation of anything).
json() {
    python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[int(key)] if isinstance(value, list) else value.get(key)
print("" if value is None else value if isinstance(value, str) else json.dumps(value))
' "$@"
}

# api METHOD PATH [curl args...]: the HTTP status; the body is left in $body.
api() {
    local method=$1 path=$2
    shift 2
    curl -sS -o "$body" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer $MP_TOKEN" -H 'Accept: application/json' \
        "$@" "$base$path" || { say "cannot reach $base"; exit 3; }
}

# refused STATUS WHAT: print the API's message and exit 2 (4xx) or 3 (anything else).
refused() {
    local detail
    detail=$(json detail <"$body" 2>/dev/null) || detail=$(head -c 400 "$body")
    say "$2 refused (HTTP $1): ${detail:-$(head -c 400 "$body")}"
    [[ $1 == 4* ]] && exit 2
    exit 3
}

[[ -r $plan_file ]] || { say "cannot read $plan_file"; exit 2; }

# 1. Import (create, or replace the plan with the same slug: versions and runs are kept).
status=$(api POST "/api/plans/import/?replace=true" -H 'Content-Type: text/yaml' \
    --data-binary "@$plan_file")
[[ $status == 201 ]] || refused "$status" "import of $plan_file"
slug=$(json slug <"$body")
say "imported plan “$(json name <"$body")” ($slug)"

# 2. Dry run (nothing is written to the target).
launch=$(python3 -c 'import json, sys; print(json.dumps(
    {"plan": sys.argv[1], "mode": "dry_run",
     **({"target": sys.argv[2]} if sys.argv[2] else {})}))' "$slug" "${MP_TARGET:-}")
status=$(api POST /api/runs/ -H 'Content-Type: application/json' --data "$launch")
[[ $status == 201 ]] || refused "$status" "dry run of $slug"
run=$(json uuid <"$body")
say "dry run $run launched"

# 3. Wait for the run to end, then for its report (written by the worker right after).
deadline=$((SECONDS + timeout))
while :; do
    status=$(api GET "/api/runs/$run/")
    [[ $status == 200 ]] || refused "$status" "reading run $run"
    state=$(json status <"$body")
    case $state in
        succeeded | failed | cancelled) break ;;
    esac
    ((SECONDS < deadline)) || { say "run $run still $state after ${timeout}s"; exit 3; }
    sleep "$poll"
done
counts=$(python3 -c '
import json, sys
run = json.load(sys.stdin)
extracted, loaded, failed, filtered = (
    f"{run[k]:,}" for k in ("extracted", "loaded", "failed", "filtered"))
print(f"{extracted} extracted, {loaded} would load, {failed} failed, {filtered} filtered")
' <"$body")
error=$(json error <"$body")
say "run $state: $counts"
while :; do
    status=$(api GET "/api/run-reports/$run/")
    [[ $status == 200 ]] && break
    [[ $status == 404 ]] || refused "$status" "reading the report of run $run"
    ((SECONDS < deadline)) || { say "no report for run $run after ${timeout}s"; exit 3; }
    sleep "$poll"
done

# 4. The verdict, with what speaks against the load.
verdict=$(json verdict <"$body")
python3 -c '
import json, sys
report = json.load(sys.stdin)
data = report["data"]
for reason in data.get("dry_run", {}).get("reasons", []):
    print(f"  FAIL: {reason}")
for row in data.get("failures_by_category", [])[:10]:
    count, label = row["value"], row["label"]
    print(f"  failed rows: {count:>7,}  {label}")
' <"$body" >&2
say "verdict: $verdict · $base/runs/$run/report/"
if [[ $state != succeeded ]]; then
    say "the dry run $state${error:+: $error}"
    exit 1
fi
if [[ $verdict == fail ]]; then
    say "FAIL: a load of this plan would not go through"
    exit 1
fi
exit 0
