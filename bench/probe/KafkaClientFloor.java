// The Apache Kafka Java consumer's CPU per message, for bench/probe_kafka_clients.py.
//
//   java -cp <kafka jars>:<dir> KafkaClientFloor BOOTSTRAP TOPICS PARTITIONS WARM COUNT
//
// Assigns partitions 0..PARTITIONS-1 of every comma-separated topic at their end offsets,
// prints "ready", then polls (fetch.min.bytes 1, fetch.max.wait.ms 10, poll 2 ms: the harness
// collector's latency settings) and only sums the value and key bytes. The CPU clock (the
// whole JVM process: JIT and GC included) starts after WARM records; after COUNT more it
// prints one JSON line and exits.
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class KafkaClientFloor {
  public static void main(String[] args) {
    String bootstrap = args[0];
    String[] topics = args[1].split(",");
    int partitions = Integer.parseInt(args[2]);
    long warm = Long.parseLong(args[3]);
    long count = Long.parseLong(args[4]);
    Properties props = new Properties();
    props.put("bootstrap.servers", bootstrap);
    props.put("key.deserializer", ByteArrayDeserializer.class.getName());
    props.put("value.deserializer", ByteArrayDeserializer.class.getName());
    props.put("enable.auto.commit", "false");
    props.put("fetch.min.bytes", "1");
    props.put("fetch.max.wait.ms", "10");
    props.put("max.poll.records", "1000");
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> assigned = new ArrayList<>();
      for (String topic : topics) {
        for (int p = 0; p < partitions; p++) {
          assigned.add(new TopicPartition(topic, p));
        }
      }
      consumer.assign(assigned);
      consumer.seekToEnd(assigned);
      for (TopicPartition tp : assigned) {
        consumer.position(tp); // resolve the end offsets now, before "ready"
      }
      System.out.println("ready");
      System.out.flush();
      long seen = 0;
      long bytes = 0;
      long cpuStart = 0;
      long wallStart = 0;
      while (seen < warm + count) {
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(2))) {
          bytes += record.value().length + (record.key() == null ? 0 : record.key().length);
          seen++;
          if (seen == warm) {
            cpuStart = os.getProcessCpuTime();
            wallStart = System.nanoTime();
          }
        }
      }
      long cpuNs = os.getProcessCpuTime() - cpuStart;
      double wallS = (System.nanoTime() - wallStart) / 1e9;
      System.out.printf(
          "{\"messages\": %d, \"cpu_s\": %.3f, \"wall_s\": %.3f, \"bytes\": %d}%n",
          seen - warm, cpuNs / 1e9, wallS, bytes);
    }
  }
}
