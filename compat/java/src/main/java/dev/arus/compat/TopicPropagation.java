package dev.arus.compat;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * Waits until every broker of the bootstrap string lists a new topic with all its partitions
 * led, asking each broker itself (a raw Metadata v1 request: the Java clients route
 * Metadata to whichever node they like, so they cannot ask one broker in particular).
 *
 * <p>Brokers replay a created topic asynchronously, so on a cluster a producer that learns
 * the topic from one broker may reach a leader that has not replayed it yet and hear
 * UNKNOWN_TOPIC_ID; a scenario that produces with retries=0 then fails for a reason that is
 * not its subject. Kafka's own test utilities wait the same way
 * (TestUtils.waitForAllPartitionsMetadata), as does compat/python/common.py's
 * wait_topic_everywhere. One node: returns at once.
 */
final class TopicPropagation {
    private TopicPropagation() {}

    static void awaitEveryBroker(String bootstrap, String topic, int partitions, long timeoutMs) throws Exception {
        String[] addrs = bootstrap.split(",");
        if (addrs.length < 2) return;
        long deadline = System.currentTimeMillis() + timeoutMs;
        for (String addr : addrs) {
            while (!known(addr.trim(), topic, partitions)) {
                if (System.currentTimeMillis() > deadline) {
                    throw new JavaClient.Fail("topic " + topic + " not listed with " + partitions
                            + " led partitions by " + addr + " within " + timeoutMs + " ms of its creation");
                }
                Thread.sleep(50);
            }
        }
    }

    /** Whether the broker at addr lists the topic with `partitions` partitions, each led. */
    static boolean known(String addr, String topic, int partitions) {
        int colon = addr.lastIndexOf(':');
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(addr.substring(0, colon), Integer.parseInt(addr.substring(colon + 1))), 2000);
            s.setSoTimeout(2000);
            byte[] client = "arus-compat".getBytes(StandardCharsets.UTF_8);
            byte[] name = topic.getBytes(StandardCharsets.UTF_8);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            // Request header v1 (api key 3, version 1, correlation id, client id), then the
            // v1 body: an array of one topic name.
            out.writeInt(2 + 2 + 4 + 2 + client.length + 4 + 2 + name.length);
            out.writeShort(3);
            out.writeShort(1);
            out.writeInt(1);
            out.writeShort(client.length);
            out.write(client);
            out.writeInt(1);
            out.writeShort(name.length);
            out.write(name);
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            in.readInt(); // size
            in.readInt(); // correlation id
            for (int b = in.readInt(); b > 0; b--) {
                in.readInt(); // node id
                string(in); // host
                in.readInt(); // port
                string(in); // rack
            }
            in.readInt(); // controller id
            for (int t = in.readInt(); t > 0; t--) {
                short err = in.readShort();
                String got = string(in);
                in.readBoolean(); // internal
                int n = in.readInt(), led = 0;
                for (int p = 0; p < n; p++) {
                    short perr = in.readShort();
                    in.readInt(); // index
                    int leader = in.readInt();
                    for (int r = in.readInt(); r > 0; r--) in.readInt(); // replicas
                    for (int r = in.readInt(); r > 0; r--) in.readInt(); // isr
                    if (perr == 0 && leader >= 0) led++;
                }
                if (topic.equals(got)) return err == 0 && n == partitions && led == partitions;
            }
            return false;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private static String string(DataInputStream in) throws IOException {
        short len = in.readShort();
        if (len < 0) return null;
        byte[] b = new byte[len];
        in.readFully(b);
        return new String(b, StandardCharsets.UTF_8);
    }
}
