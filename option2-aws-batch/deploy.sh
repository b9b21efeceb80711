#!/usr/bin/env bash
# deploy.sh: option 2's deployment script. Without --parts it is submit-job.sh (same options);
# with --parts N it copies one object in N parts side by side: a plan job, then one array job
# of N children that depends on it. Run `deploy.sh --help` for the options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=deploy
# shellcheck source=SCRIPTDIR/../scripts/deploy-common.sh
source "$HERE/../scripts/deploy-common.sh"
BUILD_TARGETS=(":" "batch-array:-array")

usage() {
    cat <<EOF
Usage: option2-aws-batch/deploy.sh [--parts N [--plan URI]] [submit-job.sh OPTIONS]

Without --parts: exactly option2-aws-batch/submit-job.sh (see its --help).

With --parts N (2 to 10000): build, push and apply as submit-job.sh does, then submit
  1. a plan job (the job definition, command "plan --source SOURCE --parts N --output PLAN"):
     one pass over the object with check's parser, writing the plan to PLAN;
  2. an array job of N children of the same job definition that depends on it (N_TO_N is
     not needed: every child waits for the plan). Child I runs "run" with CSV_TO_KAFKA_PLAN
     set and takes its part from AWS_BATCH_JOB_ARRAY_INDEX: it copies part I into partition
     I of the topic as job JOB_ID.part-I, with the job definition's retry strategy (a Spot
     reclaim, exit 143 or exit 4 is retried and resumes inside the part; exit 2 and 3 are
     not).
The topic is created with N partitions if absent; a topic with fewer is refused (exit 2).
The apply gets TF_VAR_parts=N: one no-progress alarm per part (a parts = ... in
terraform.tfvars wins over it).
Follow it with: csv-to-kafka status --job-id JOB_ID --plan PLAN.

Options:
  --parts N           copy the object in N parts side by side
  --plan URI          where the plan goes (default: SOURCE with .plan.json appended; the job
                      role may write and read it: modules/core grants KEY.plan.json)
  --job-id, --source, --topic, --image-tag, --skip-build, --skip-apply, --outputs,
  --build-arg, --auto-approve: as submit-job.sh
  -h, --help          show this help

The tests run it with --skip-build --skip-apply --outputs FILE against moto.
EOF
}

parts=""
plan=""
passed=()
args=("$@")
while (($#)); do
    case "$1" in
    --parts) parts="${2:?--parts needs a value}"; shift 2 ;;
    --plan) plan="${2:?--plan needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) passed+=("$1"); shift ;;
    esac
done

if [[ -z "$parts" ]]; then
    [[ -z "$plan" ]] || die "--plan goes with --parts"
    exec "$HERE/submit-job.sh" "${args[@]}"
fi
if ! [[ "$parts" =~ ^[0-9]+$ ]] || ((parts < 2 || parts > 10000)); then
    die "--parts takes 2 to 10000 (an array job's size); for one part use submit-job.sh"
fi

set -- "${passed[@]+"${passed[@]}"}"
while (($#)); do
    case "$1" in
    --manifest | --array-size) die "$1 and --parts are two different array jobs: choose one" ;;
    *) common_option "$@"; shift "$TAKEN" ;;
    esac
done

require_tools
make_work_dir
export TF_VAR_parts="$parts" # modules/monitoring: one no-progress alarm per part
deploy_stack

queue="$(output job_queue)"
definition="$(output job_definition)"
effective_job="${job_id:-$(output job_id)}"
source_uri="${source_uri:-$(output source)}"
topic="${topic:-$(output kafka_topic)}"
[[ "$source_uri" == s3://*/* ]] || die "no source object (--source s3://BUCKET/KEY)"
plan="${plan:-$source_uri.plan.json}"
[[ "$plan" == s3://*/* ]] || die "--plan must be s3://BUCKET/KEY"

# Batch job names: up to 128 letters, digits, hyphens and underscores.
job_name() { printf '%s' "$1" | tr --complement 'A-Za-z0-9_-' '-' | cut --characters=1-128; }

environment="$(jq --null-input --arg job "$effective_job" --arg source "$source_uri" \
    --arg topic "$topic" --arg plan "$plan" '
    [ {name: "CSV_TO_KAFKA_JOB_ID", value: $job}, {name: "CSV_TO_KAFKA_SOURCE", value: $source},
      {name: "CSV_TO_KAFKA_TOPIC", value: $topic}, {name: "CSV_TO_KAFKA_PLAN", value: $plan} ]')"
plan_overrides="$(jq --null-input --argjson env "$environment" --arg source "$source_uri" \
    --arg parts "$parts" --arg plan "$plan" '
    {command: ["plan", "--source", $source, "--parts", $parts, "--output", $plan],
     environment: ($env | map(select(.name != "CSV_TO_KAFKA_PLAN")))}')"
log "submitting the plan job of $effective_job: $source_uri in $parts parts -> $plan"
plan_job="$("$AWS" batch submit-job --job-name "$(job_name "$effective_job-plan")" \
    --job-queue "$queue" --job-definition "$definition" --container-overrides "$plan_overrides" \
    --query jobId --output text)"
[[ -n "$plan_job" && "$plan_job" != None ]] || die "submit-job returned no job id for the plan"

part_overrides="$(jq --null-input --argjson env "$environment" '{command: ["run"], environment: $env}')"
log "submitting array job $effective_job: $parts parts, after $plan_job"
parts_job="$("$AWS" batch submit-job --job-name "$(job_name "$effective_job-parts")" \
    --job-queue "$queue" --job-definition "$definition" --array-properties "size=$parts" \
    --depends-on "jobId=$plan_job" --container-overrides "$part_overrides" \
    --query jobId --output text)"
[[ -n "$parts_job" && "$parts_job" != None ]] || die "submit-job returned no job id for the parts"
printf '%s\n%s\n' "$plan_job" "$parts_job"

cat >&2 <<EOF
deploy: submitted plan job $plan_job and array job $parts_job ($parts parts of job $effective_job).
To follow it:
  aws batch describe-jobs --jobs $parts_job --query 'jobs[0].[status,arrayProperties.statusSummary]'
  csv-to-kafka status --job-id $effective_job --plan $plan --checkpoint-table $(output table_name)
  csv-to-kafka verify --plan $plan --topic $topic --bootstrap-servers ...   (once all are done)
  dashboard: $(output dashboard_url)
EOF
