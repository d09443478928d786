#!/bin/sh
# Start a single-node Apache Kafka (KRaft: broker + controller in one JVM).
#
# Writes server.properties into KAFKA_CONFIG_DIR, formats KAFKA_DATA_DIR on first start
# (a random cluster id, kept in meta.properties on the volume afterwards) and execs the broker.
#
# Environment (defaults in brackets):
#   POD_NAME                  <statefulset>-<ordinal>; the ordinal is node.id    [hostname]
#   KAFKA_ADVERTISED_HOST     name clients reach this broker by   [$POD_NAME.$KAFKA_SERVICE]
#   KAFKA_SERVICE             governing headless Service                            [kafka]
#   KAFKA_DATA_DIR            log.dirs, a volume                      [/var/lib/kafka/data]
#   KAFKA_CONFIG_DIR          where server.properties is written                     [/tmp]
#   KAFKA_NUM_PARTITIONS      default partitions of a topic                              [3]
#   KAFKA_HEAP                JVM heap                                                [512m]
set -eu

pod=${POD_NAME:-$(hostname)}
node_id=${pod##*-}
case "$node_id" in
    '' | *[!0-9]*) node_id=0 ;;
esac
host=${KAFKA_ADVERTISED_HOST:-$pod.${KAFKA_SERVICE:-kafka}}
data=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
conf_dir=${KAFKA_CONFIG_DIR:-/tmp}
conf=$conf_dir/server.properties
heap=${KAFKA_HEAP:-512m}

mkdir -p "$data" "$conf_dir"
cat >"$conf" <<PROPS
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$node_id@127.0.0.1:9093
listeners=PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://$host:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data
num.partitions=${KAFKA_NUM_PARTITIONS:-3}
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
PROPS

java_cmd() {
    main=$1
    shift
    exec_heap=$1
    shift
    java "-Xmx$exec_heap" -Xms64m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:-UsePerfData \
        -Djava.awt.headless=true -Djava.io.tmpdir=/tmp \
        -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties \
        -cp '/opt/kafka/libs/*' "$main" "$@"
}

if [ ! -f "$data/meta.properties" ]; then
    cluster_id=$(java_cmd kafka.tools.StorageTool 128m random-uuid | tail -n 1)
    echo "formatting $data (cluster id $cluster_id)"
    java_cmd kafka.tools.StorageTool 128m format -t "$cluster_id" -c "$conf" --ignore-formatted
fi
echo "starting Kafka node $node_id, advertised as $host:9092"
exec java "-Xmx$heap" "-Xms$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:-UsePerfData \
    -Djava.awt.headless=true -Djava.io.tmpdir=/tmp \
    -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties \
    -cp '/opt/kafka/libs/*' kafka.Kafka "$conf"
