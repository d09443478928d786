// The Flink peer of the leaders dataflow, as Flink SQL in a local MiniCluster (bench only).
//
//   java -cp <.cache/flink/libs/*>:<classes> FlinkLeaders BOOTSTRAP TOPIC GROUP PARALLELISM OBJECT_REUSE
//
// Reads the bench's pre-filled ticks topic (JSON, ISO-8601 `ts`, watermark ts - 5 s) from the
// beginning to the offsets at start (bounded), computes HOP windows of 1, 5 and 15 minutes
// every 10 s, AVG(price) per symbol, and each window's top 3 by ROW_NUMBER (mean descending,
// symbol ascending), and prints one line per row on stdout:
//   M|<length s>|<window end>|<symbol>|<mean>        every symbol's mean
//   T|<length s>|<window end>|<rank>|<symbol>|<mean> the window's top 3
// Offsets are auto-committed to GROUP every 200 ms, so the bench can follow the progress.
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;

public final class FlinkLeaders {
    private FlinkLeaders() {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2];
        int parallelism = Integer.parseInt(args[3]);
        boolean objectReuse = Boolean.parseBoolean(args[4]);

        Configuration conf = new Configuration();
        conf.setString("parallelism.default", String.valueOf(parallelism));
        conf.setString("taskmanager.numberOfTaskSlots", String.valueOf(parallelism));
        conf.setString("pipeline.object-reuse", String.valueOf(objectReuse));
        conf.setString("table.local-time-zone", "UTC");
        conf.setString("rest.bind-address", "127.0.0.1");
        conf.setString("rest.address", "127.0.0.1");
        conf.setString("rest.port", "0");
        TableEnvironment env = TableEnvironment.create(
                EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(conf).build());

        env.executeSql(
                "CREATE TABLE ticks ("
                        + " schema_version INT, symbol STRING, price DOUBLE, size DOUBLE,"
                        + " ts TIMESTAMP_LTZ(3), source STRING,"
                        + " WATERMARK FOR ts AS ts - INTERVAL '5' SECOND"
                        + ") WITH ("
                        + " 'connector' = 'kafka', 'topic' = '" + topic + "',"
                        + " 'properties.bootstrap.servers' = '" + bootstrap + "',"
                        + " 'properties.group.id' = '" + group + "',"
                        + " 'properties.enable.auto.commit' = 'true',"
                        + " 'properties.auto.commit.interval.ms' = '200',"
                        // generous client timeouts: the bench machine may be heavily loaded
                        + " 'properties.default.api.timeout.ms' = '600000',"
                        + " 'properties.request.timeout.ms' = '120000',"
                        + " 'scan.startup.mode' = 'earliest-offset',"
                        + " 'scan.bounded.mode' = 'latest-offset',"
                        + " 'format' = 'json', 'json.timestamp-format.standard' = 'ISO-8601'"
                        + ")");
        env.executeSql("CREATE TABLE out_rows (line STRING) WITH ('connector' = 'print')");

        StatementSet statements = env.createStatementSet();
        for (int minutes : new int[] {1, 5, 15}) {
            String means = "means_" + minutes;
            env.executeSql(
                    "CREATE TEMPORARY VIEW " + means + " AS"
                            + " SELECT window_start, window_end, symbol, AVG(price) AS mean"
                            + " FROM TABLE(HOP(TABLE ticks, DESCRIPTOR(ts), INTERVAL '10' SECOND,"
                            + " INTERVAL '" + minutes + "' MINUTE))"
                            + " GROUP BY window_start, window_end, symbol");
            String length = String.valueOf(minutes * 60);
            statements.addInsertSql(
                    "INSERT INTO out_rows SELECT CONCAT_WS('|', 'M', '" + length + "',"
                            + " CAST(window_end AS STRING), symbol, CAST(mean AS STRING))"
                            + " FROM " + means);
            statements.addInsertSql(
                    "INSERT INTO out_rows SELECT CONCAT_WS('|', 'T', '" + length + "',"
                            + " CAST(window_end AS STRING), CAST(rn AS STRING), symbol,"
                            + " CAST(mean AS STRING)) FROM ("
                            + " SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end"
                            + " ORDER BY mean DESC, symbol ASC) AS rn FROM " + means
                            + ") WHERE rn <= 3");
        }
        statements.execute().await();
    }
}
