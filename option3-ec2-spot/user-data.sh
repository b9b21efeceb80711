#!/bin/bash
# user-data.sh: the whole life of a one-off csv-to-kafka Spot instance (Amazon Linux 2023).
#
# cloud-init runs it once as root at first boot, after the settings that Terraform or
# launch-spot.sh put in front of it (one `export NAME='value'` per line). It
#   1. installs Docker, logs in to ECR and pulls the image (unless SPOT_JOB_PROCESSOR is set);
#   2. runs `csv-to-kafka run` with the CSV_TO_KAFKA_* settings, logs to CloudWatch Logs;
#   3. polls the Spot interruption notice through IMDSv2 (spot/instance-action) and, when it
#      appears, sends SIGTERM to the processor: it commits, checkpoints and exits 143 well within
#      the two minutes' notice, and a later run of the same job id resumes from there;
#   4. reruns the processor after exit 4 (S3, Kafka or DynamoDB kept failing), up to
#      SPOT_JOB_ATTEMPTS runs; never after exit 0, 2, 3 or an interruption;
#   5. powers the instance off when it is done, whatever happened (the launch template's
#      shutdown behaviour is terminate, so the instance terminates itself and costs nothing more).
#
# Settings (environment):
#   CSV_TO_KAFKA_*            passed to the container unchanged (csv-to-kafka run --help)
#   AWS_REGION                region of the stack (required)
#   SPOT_JOB_IMAGE            image to run, ECR URI with tag (required unless SPOT_JOB_PROCESSOR)
#   SPOT_JOB_LOG_GROUP        CloudWatch log group of the container (else Docker's json-file log)
#   SPOT_JOB_SASL_SECRET_ARN  MSK SCRAM secret; its password key becomes CSV_TO_KAFKA_SASL_PASSWORD
#   SPOT_JOB_ATTEMPTS         processor runs after exit 4 (default 3)
#   SPOT_JOB_POLL_SECONDS     seconds between interruption checks (default 5)
#   SPOT_JOB_IMDS             instance metadata endpoint (default http://169.254.169.254)
#   SPOT_JOB_PROCESSOR        a local command to run instead of `docker run IMAGE` (tests)
#   SPOT_JOB_SHUTDOWN         command that powers off at the end (default: shutdown -h now)
#
# Exit status: the processor's last exit code (shown in /var/log/cloud-init-output.log).
# `user-data.sh --help` prints this header.
set -euo pipefail

if [[ "${1:-}" == --help || "${1:-}" == -h ]]; then
    sed --quiet '2,/^set -euo pipefail$/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

IMDS="${SPOT_JOB_IMDS:-http://169.254.169.254}"
POLL_SECONDS="${SPOT_JOB_POLL_SECONDS:-5}"
ATTEMPTS="${SPOT_JOB_ATTEMPTS:-3}"
SHUTDOWN="${SPOT_JOB_SHUTDOWN:-shutdown -h now}"
PROCESSOR="${SPOT_JOB_PROCESSOR:-}"
CONTAINER=csv-to-kafka

processor_pid=""
interrupted=0

log() { printf '%s user-data: %s\n' "$(date --utc +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# Runs on every exit, success or not: an instance that stayed up would cost money for nothing.
power_off() {
    local rc=$?
    if [[ -n "$processor_pid" ]] && kill -0 "$processor_pid" 2>/dev/null; then
        kill -TERM "$processor_pid" 2>/dev/null || true
        wait "$processor_pid" 2>/dev/null || true
    fi
    log "finished with exit code $rc; powering off ($SHUTDOWN)"
    # SHUTDOWN is a command line on purpose, e.g. "shutdown -h now".
    # shellcheck disable=SC2086
    $SHUTDOWN || log "the shutdown command failed"
    exit "$rc"
}
trap power_off EXIT

# --- instance metadata (IMDSv2: a session token for every request) --------------------------

imds_token() {
    curl --silent --show-error --fail --max-time 2 --request PUT \
        --header 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$IMDS/latest/api/token"
}

imds_get() {
    local token
    token="$(imds_token)" || return 1
    curl --silent --fail --max-time 2 --header "X-aws-ec2-metadata-token: $token" \
        "$IMDS/latest/meta-data/$1"
}

# Prints the notice and succeeds once AWS has scheduled the instance's interruption; the path
# answers 404 until then.
interruption_notice() {
    imds_get spot/instance-action
}

# --- the processor ------------------------------------------------------------------------

prepare_docker() {
    if ! command -v docker >/dev/null; then
        log "installing docker"
        dnf install --assumeyes --quiet docker
    fi
    systemctl start docker
    local registry="${SPOT_JOB_IMAGE%%/*}"
    log "pulling $SPOT_JOB_IMAGE"
    aws ecr get-login-password --region "$AWS_REGION" |
        docker login --username AWS --password-stdin "$registry" >/dev/null
    docker pull --quiet "$SPOT_JOB_IMAGE" >/dev/null
}

load_sasl_password() {
    [[ -n "${SPOT_JOB_SASL_SECRET_ARN:-}" ]] || return 0
    log "reading the SCRAM password from $SPOT_JOB_SASL_SECRET_ARN"
    CSV_TO_KAFKA_SASL_PASSWORD="$(
        aws secretsmanager get-secret-value --region "$AWS_REGION" \
            --secret-id "$SPOT_JOB_SASL_SECRET_ARN" --query SecretString --output text |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])'
    )"
    export CSV_TO_KAFKA_SASL_PASSWORD
}

# Starts the processor in the background and sets processor_pid. Values never appear on a
# command line: `docker run --env NAME` copies NAME from this environment.
start_processor() {
    if [[ -n "$PROCESSOR" ]]; then
        local -a command
        read -r -a command <<<"$PROCESSOR"
        "${command[@]}" run &
    else
        local -a env_args=(--env AWS_REGION --env AWS_DEFAULT_REGION)
        local name
        while IFS= read -r name; do
            env_args+=(--env "$name")
        done < <(compgen -e | grep '^CSV_TO_KAFKA_' || true)
        local -a log_args=()
        if [[ -n "${SPOT_JOB_LOG_GROUP:-}" ]]; then
            log_args=(--log-driver awslogs
                --log-opt "awslogs-group=$SPOT_JOB_LOG_GROUP"
                --log-opt "awslogs-region=$AWS_REGION"
                --log-opt "awslogs-stream=${CSV_TO_KAFKA_JOB_ID:-job}/$instance_id")
        fi
        # The client proxies signals to the container (sig-proxy), so SIGTERM to this pid reaches
        # csv-to-kafka, PID 1 in the container. Host network: the instance role via IMDS (one hop).
        docker run --rm --name "$CONTAINER" --network host \
            "${log_args[@]}" "${env_args[@]}" "$SPOT_JOB_IMAGE" run &
    fi
    processor_pid=$!
}

# Waits for the processor while polling the interruption notice; returns its exit code.
watch_processor() {
    local notice
    while kill -0 "$processor_pid" 2>/dev/null; do
        if notice="$(interruption_notice 2>/dev/null)"; then
            log "Spot interruption notice: $notice; sending SIGTERM to the processor"
            interrupted=1
            kill -TERM "$processor_pid" 2>/dev/null || true
            break
        fi
        sleep "$POLL_SECONDS"
    done
    local rc=0
    wait "$processor_pid" || rc=$?
    processor_pid=""
    return "$rc"
}

main() {
    : "${AWS_REGION:?AWS_REGION must be set}"
    export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
    instance_id="$(imds_get instance-id || echo unknown)"
    log "instance $instance_id: job ${CSV_TO_KAFKA_JOB_ID:-?} from ${CSV_TO_KAFKA_SOURCE:-?}"

    if [[ -z "$PROCESSOR" ]]; then
        : "${SPOT_JOB_IMAGE:?SPOT_JOB_IMAGE must be set (or SPOT_JOB_PROCESSOR)}"
        prepare_docker
    fi
    load_sasl_password

    local attempt rc
    for ((attempt = 1; ; attempt++)); do
        log "starting the processor (run $attempt of $ATTEMPTS)"
        start_processor
        rc=0
        watch_processor || rc=$?
        log "the processor exited with $rc"
        if ((interrupted)); then
            log "interrupted: rerun launch-spot.sh with the same job id to resume"
            break
        fi
        if ((rc != 4 || attempt >= ATTEMPTS)); then
            break
        fi
        log "exit 4 is retryable: running again"
    done
    return "$rc"
}

main "$@"
