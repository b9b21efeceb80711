// The Java client's answers for test_partitioning.py: for each line "HEX PARTITIONS" on stdin,
// prints "MURMUR2 PARTITION": Kafka's Utils.murmur2 of the key's bytes and the partition that the
// producer's default partitioner (BuiltInPartitioner.partitionForKey) picks for it.
// Run with the kafka-clients jar on the class path: java -cp 'LIBS/*' JavaPartitions.java
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;

public class JavaPartitions {
    public static void main(String[] args) throws Exception {
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split(" ", -1);
            byte[] key = HexFormat.of().parseHex(parts[0]);
            int partitions = Integer.parseInt(parts[1]);
            System.out.println(
                    Utils.murmur2(key) + " " + BuiltInPartitioner.partitionForKey(key, partitions));
        }
    }
}
