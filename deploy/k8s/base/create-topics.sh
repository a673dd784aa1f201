#!/usr/bin/env bash
# Create trendcast's topics on Apache Kafka before the worker starts (docker-compose service topic-init).
#
# Every topic gets TRENDCAST_PARTITIONS partitions: the sources must be
# co-partitioned with the worker's tables. The table changelogs are
# compacted (only each key's latest state matters); their names are Faust's:
# "<app id>-<table name>-changelog". The models topic has one partition (every
# worker reads every promoted checkpoint, in order) and is compacted too (the
# newest promotion is what matters). Existing topics are left as they are.
# DRY_RUN=1 prints the kafka-topics.sh calls instead of running them (the tests use it).
set -euo pipefail

: "${BOOTSTRAP:=kafka:9092}"
: "${TRENDCAST_PARTITIONS:=4}"
: "${TRENDCAST_REPLICATION:=1}"
: "${TRENDCAST_APP_ID:=trendcast}"
: "${KAFKA_TOPICS:=/opt/kafka/bin/kafka-topics.sh}"

plain=(
  "${TRENDCAST_TOPIC_CLICKS:-clicks}"
  "${TRENDCAST_TOPIC_CARTS:-carts}"
  "${TRENDCAST_TOPIC_ORDERS:-orders}"
  "${TRENDCAST_TOPIC_CATALOG:-catalog}"
  "${TRENDCAST_TOPIC_FORECASTS:-forecasts}"
  "${TRENDCAST_TOPIC_ALERTS:-stage-alerts}"
  "${TRENDCAST_TOPIC_DEAD_LETTERS:-dead-letters}"
)
# Training samples: published unless TRENDCAST_TOPIC_TRAINING_SAMPLES is set empty (time-retained, the default policy).
if [ "${TRENDCAST_TOPIC_TRAINING_SAMPLES-training-samples}" != "" ]; then
  plain+=("${TRENDCAST_TOPIC_TRAINING_SAMPLES-training-samples}")
fi
# The inventory topic is optional: created only when the worker is told to read one.
if [ -n "${TRENDCAST_TOPIC_INVENTORY:-}" ]; then plain+=("$TRENDCAST_TOPIC_INVENTORY"); fi
compacted=(
  "${TRENDCAST_APP_ID}-sku-windows-v4-changelog"
  "${TRENDCAST_APP_ID}-sku-catalog-v1-changelog"
  "${TRENDCAST_APP_ID}-partition-learning-v1-changelog"
  "${TRENDCAST_APP_ID}-sku-embeddings-v1-changelog"
  "${TRENDCAST_APP_ID}-sku-inventory-v1-changelog"
)

create() {  # topic partitions [extra kafka-topics.sh arguments]
  local cmd=("$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists
             --topic "$1" --partitions "$2" --replication-factor "$TRENDCAST_REPLICATION" "${@:3}")
  if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "${cmd[@]}"
  else
    "${cmd[@]}"
  fi
}

for t in "${plain[@]}"; do create "$t" "$TRENDCAST_PARTITIONS"; done
for t in "${compacted[@]}"; do create "$t" "$TRENDCAST_PARTITIONS" --config cleanup.policy=compact; done
create "${TRENDCAST_TOPIC_MODELS:-models}" 1 --config cleanup.policy=compact
echo "topics ready: ${#plain[@]} plain, ${#compacted[@]} compacted with ${TRENDCAST_PARTITIONS} partitions each; models" >&2
