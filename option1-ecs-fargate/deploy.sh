#!/usr/bin/env bash
# deploy.sh: build and push the image, apply the Terraform stack, run the job as a Fargate task.
# Run `deploy.sh --help` for the options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=deploy
# shellcheck source=SCRIPTDIR/../scripts/deploy-common.sh
source "$HERE/../scripts/deploy-common.sh"

usage() {
    cat <<EOF
Usage: option1-ecs-fargate/deploy.sh [OPTIONS]

Build the image and push it to the stack's ECR repository, apply the Terraform stack in
option1-ecs-fargate/terraform with that image tag, then start the job with aws ecs run-task and
print how to follow it.

Options:
  --image-tag TAG     tag to build and push (default: the git commit, plus -dirty and a
                      timestamp if the work tree has changes; ECR tags are immutable)
  --build-arg NAME=VALUE passed to docker build (app/Dockerfile's BUILD_IMAGE, RUNTIME_IMAGE)
  --skip-build        do not build or push: the image TAG is in ECR already
  --skip-apply        do not run terraform apply: the stack exists. If --image-tag is given,
                      register a task definition revision for that image instead
  --outputs FILE      the stack's outputs as \`terraform output -json\` writes them (default: ask
                      terraform in $TF_DIR)
  --job-id ID         run another job than the stack's default (with --source and --topic)
  --source URI        s3://BUCKET/KEY of that job (the task role must be allowed to read it)
  --topic TOPIC       topic of that job (the task role must be allowed to write it)
  --auto-approve      pass -auto-approve to terraform apply
  --wait              wait for the task to stop; exit with the container's exit code
  -h, --help          show this help

Environment:
  TERRAFORM   terraform or tofu binary (default terraform)
  AWS         aws CLI binary (default aws); AWS_REGION, AWS_PROFILE and AWS_ENDPOINT_URL are
              honoured as usual

The tests run it with --skip-build --skip-apply --outputs FILE against moto.
EOF
}

wait_for_task=0

while (($#)); do
    case "$1" in
    --wait) wait_for_task=1; shift ;;
    *) common_option "$@"; shift "$TAKEN" ;;
    esac
done

require_tools

# A new revision of the family whose only change is the container's image.
register_revision() {
    local family="$1" image="$2" definition
    definition="$("$AWS" ecs describe-task-definition --task-definition "$family" \
        --query taskDefinition --output json)"
    jq --arg image "$image" '
        .containerDefinitions[0].image = $image
        | del(.taskDefinitionArn, .revision, .status, .requiresAttributes, .compatibilities,
              .registeredAt, .registeredBy, .deregisteredAt)' <<<"$definition" >"$work/task-definition.json"
    "$AWS" ecs register-task-definition --cli-input-json "file://$work/task-definition.json" \
        --query taskDefinition.taskDefinitionArn --output text
}

make_work_dir
deploy_stack

cluster="$(output cluster_name)"
task_definition="$(output task_definition_arn)"
container="$(output container_name)"
if ((skip_apply && image_changed)); then
    image="$(output ecr_repository_url):$image_tag"
    task_definition="$(register_revision "$(output task_definition_family)" "$image")"
    log "registered $task_definition for $image"
fi

# --overrides: only what was asked for; the task definition holds everything else.
overrides="$(jq --null-input --arg container "$container" --arg job "$job_id" --arg source "$source_uri" \
    --arg topic "$topic" '
    [ {name: "CSV_TO_KAFKA_JOB_ID", value: $job}, {name: "CSV_TO_KAFKA_SOURCE", value: $source},
      {name: "CSV_TO_KAFKA_TOPIC", value: $topic} ] | map(select(.value != "")) as $env
    | {containerOverrides: [{name: $container, environment: $env}]}')"

network="$(jq --null-input --argjson subnets "$(jq --compact-output '.subnet_ids.value' <<<"$outputs")" \
    --arg sg "$(output security_group_id)" --arg public "$(output assign_public_ip)" '
    {awsvpcConfiguration: {subnets: $subnets, securityGroups: [$sg],
     assignPublicIp: (if $public == "true" then "ENABLED" else "DISABLED" end)}}')"

log "running $task_definition on $cluster ($(output capacity_provider))"
task_arn="$("$AWS" ecs run-task \
    --cluster "$cluster" \
    --task-definition "$task_definition" \
    --capacity-provider-strategy "capacityProvider=$(output capacity_provider),weight=1" \
    --network-configuration "$network" \
    --overrides "$overrides" \
    --started-by deploy.sh \
    --propagate-tags TASK_DEFINITION \
    --query 'tasks[0].taskArn' --output text)"
[[ -n "$task_arn" && "$task_arn" != None ]] || die "run-task started no task"
printf '%s\n' "$task_arn"

task_id="${task_arn##*/}"
effective_job="${job_id:-$(output job_id)}"
cat >&2 <<EOF
deploy: started task $task_id. To follow it:
  aws ecs describe-tasks --cluster $cluster --tasks $task_id --query 'tasks[0].[lastStatus,containers[0].exitCode,stoppedReason]'
  aws logs tail $(output log_group_name) --log-stream-names ecs/$container/$task_id --follow
  aws dynamodb get-item --table-name $(output table_name) --key '{"job_id":{"S":"$effective_job"}}'
  dashboard: $(output dashboard_url)
EOF

if ((wait_for_task)); then
    log "waiting for the task to stop"
    while :; do
        read -r status exit_code reason < <("$AWS" ecs describe-tasks --cluster "$cluster" \
            --tasks "$task_arn" --output text \
            --query 'tasks[0].[lastStatus, containers[0].exitCode, stoppedReason]')
        [[ "$status" == STOPPED ]] && break
        sleep "${DEPLOY_POLL_SECONDS:-10}"
    done
    log "task stopped: exit code $exit_code ($reason)"
    case "$exit_code" in
    0) exit 0 ;;
    4 | 143 | 137) log "retryable: run deploy.sh --skip-build --skip-apply again to resume"; exit "$exit_code" ;;
    [0-9]*) log "not retryable: fix the input or the configuration first"; exit "$exit_code" ;;
    *) exit 1 ;;
    esac
fi
