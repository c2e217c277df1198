// Runs many of Apache Kafka's command-line tools in one JVM (compat/kafka_tools.py drives it).
//
// Starting a JVM per tool costs ~1-2 s of CPU; the scenario set runs ~60 tool invocations per
// broker, so one long-lived JVM per broker keeps it short. Run in source-file mode with Kafka's
// classpath (compat/work/reference-classpath.txt, which holds kafka-tools 4.4.0):
//
//   java -cp "$(cat compat/work/reference-classpath.txt)" compat/tools/ToolRunner.java
//
// Protocol: one JSON object per line on stdin, one JSON answer per line on stdout.
//   request: {"id": "...", "class": "org.apache.kafka.tools.TopicCommand", "args": [...],
//             "stdin": "optional text fed as System.in", "timeout": 30}
//   answer:  {"id": "...", "exit": 0, "out": "...", "err": "...", "ms": 123}
// `exit` is the code the tool passed to org.apache.kafka.common.utils.Exit.exit (intercepted
// with Exit.setExitProcedure, so the JVM survives), 0 if main returned normally, -1 if main threw
// (the stack trace is appended to err), -2 on timeout (the tool's thread is abandoned).
//
// Two pseudo-classes drive a transactional producer for the kafka-transactions steps (no tool
// opens a transaction): "@txn-open" args [bootstrap, transactionalId, topic, partition] begins a
// transaction, sends one record and flushes it (the producer stays open);
// "@txn-commit" args [transactionalId] commits and closes it.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.internals.Exit;

public class ToolRunner {
    /** Thrown by the intercepted Exit.exit / Exit.halt to unwind the tool's main. */
    static final class ExitCalled extends RuntimeException {
        final int code;

        ExitCalled(int code) {
            super("Exit.exit(" + code + ")", null, false, false);
            this.code = code;
        }
    }

    static final Map<String, KafkaProducer<String, String>> OPEN_TXNS = new HashMap<>();
    static final List<Runnable> HOOKS = java.util.Collections.synchronizedList(new ArrayList<>());
    // First Exit.exit of the current step: code and the output lengths at that moment.
    static volatile Integer firstExit;
    static volatile int outAtExit, errAtExit;
    static volatile ByteArrayOutputStream curOut, curErr;

    static synchronized void recordExit(int code) {
        if (firstExit != null) return;
        firstExit = code;
        System.out.flush();
        System.err.flush();
        outAtExit = curOut.size();
        errAtExit = curErr.size();
    }

    public static void main(String[] argv) throws Exception {
        ObjectMapper json = new ObjectMapper();
        PrintStream realOut = System.out;
        PrintStream realErr = System.err;
        InputStream realIn = System.in;
        // A real process ends at the first Exit.exit: that code is the step's exit status, and
        // what the tool prints after it (e.g. a `catch (Throwable)` around main reporting our
        // ExitCalled and exiting 1) would never have been printed, so the captured output is cut
        // there. The shutdown hooks a tool registers (ConsoleProducer closes, i.e. flushes, its
        // producer in one) run at the end of the step, as the JVM would run them at exit.
        Exit.setExitProcedure((code, msg) -> {
            recordExit(code);
            throw new ExitCalled(code);
        });
        Exit.setHaltProcedure((code, msg) -> {
            recordExit(code);
            throw new ExitCalled(code);
        });
        Exit.setShutdownHookAdder((name, hook) -> HOOKS.add(hook));
        BufferedReader requests = new BufferedReader(new InputStreamReader(realIn, StandardCharsets.UTF_8));
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "tool");
            t.setDaemon(true);
            return t;
        });
        String line;
        while ((line = requests.readLine()) != null) {
            if (line.isBlank()) continue;
            JsonNode req = json.readTree(line);
            String cls = req.get("class").asText();
            List<String> args = new ArrayList<>();
            req.path("args").forEach(a -> args.add(a.asText()));
            String stdin = req.path("stdin").asText("");
            int timeout = req.path("timeout").asInt(30);

            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            PrintStream outPs = new PrintStream(out, true, StandardCharsets.UTF_8);
            PrintStream errPs = new PrintStream(err, true, StandardCharsets.UTF_8);
            System.setOut(outPs);
            System.setErr(errPs);
            System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
            curOut = out;
            curErr = err;
            firstExit = null;
            HOOKS.clear();
            long start = System.nanoTime();
            int exit;
            Future<Integer> f = pool.submit(() -> run(cls, args.toArray(new String[0])));
            try {
                exit = f.get(timeout, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                f.cancel(true);
                exit = -2;
            } catch (java.util.concurrent.ExecutionException e) {
                e.getCause().printStackTrace(errPs);
                exit = -1;
            }
            Integer exited = firstExit;
            int outLen = exited != null ? outAtExit : out.size();
            int errLen = exited != null ? errAtExit : err.size();
            if (exited != null) exit = exited;
            List<Runnable> hooks = new ArrayList<>(HOOKS);
            HOOKS.clear();
            for (Runnable hook : hooks) {
                Future<?> h = pool.submit(hook);
                try {
                    h.get(timeout, TimeUnit.SECONDS);
                } catch (Exception e) {
                    h.cancel(true);
                }
            }
            long ms = (System.nanoTime() - start) / 1_000_000;
            outPs.flush();
            errPs.flush();
            // Between steps System.out is a sink, never the protocol stream: a tool thread left
            // running by a timeout must not write into the answers.
            System.setOut(new PrintStream(java.io.OutputStream.nullOutputStream()));
            System.setErr(realErr);
            System.setIn(realIn);
            ObjectNode ans = json.createObjectNode();
            ans.put("id", req.path("id").asText());
            ans.put("exit", exit);
            byte[] o = out.toByteArray();
            byte[] e = err.toByteArray();
            ans.put("out", new String(o, 0, Math.min(outLen, o.length), StandardCharsets.UTF_8));
            ans.put("err", new String(e, 0, Math.min(errLen, e.length), StandardCharsets.UTF_8)
                + (exit == -2 ? "[ToolRunner] timed out after " + timeout + " s\n" : ""));
            ans.put("ms", ms);
            realOut.println(json.writeValueAsString(ans));
            realOut.flush();
        }
        for (KafkaProducer<String, String> p : OPEN_TXNS.values()) p.close(java.time.Duration.ofSeconds(5));
        realOut.flush();
        Runtime.getRuntime().halt(0);
    }

    static int run(String cls, String[] args) throws Exception {
        switch (cls) {
            case "@txn-open":
                return txnOpen(args);
            case "@txn-commit":
                return txnCommit(args);
            case "@member-start":
                return memberStart(args);
            case "@member-stop":
                return memberStop(args);
            default:
                break;
        }
        Method main = Class.forName(cls).getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) args);
            return 0;
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ExitCalled) return ((ExitCalled) cause).code;
            cause.printStackTrace();
            return -1;
        } catch (ExitCalled e) {
            return e.code;
        }
    }

    static final Map<String, Thread> MEMBERS = new HashMap<>();
    static final Map<String, java.util.concurrent.atomic.AtomicBoolean> MEMBER_STOP = new HashMap<>();

    /** A live consumer-group member (args: bootstrap, group, topic) polling in its own thread
     *  until "@member-stop"; returns once it owns partitions (or 1 after 30 s). */
    static int memberStart(String[] a) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", a[0]);
        p.put("group.id", a[1]);
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", org.apache.kafka.common.serialization.StringDeserializer.class.getName());
        p.put("value.deserializer", org.apache.kafka.common.serialization.StringDeserializer.class.getName());
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.CountDownLatch assigned = new java.util.concurrent.CountDownLatch(1);
        Thread t = new Thread(() -> {
            try (org.apache.kafka.clients.consumer.KafkaConsumer<String, String> c =
                     new org.apache.kafka.clients.consumer.KafkaConsumer<>(p)) {
                c.subscribe(List.of(a[2]));
                while (!stop.get()) {
                    c.poll(java.time.Duration.ofMillis(200));
                    if (!c.assignment().isEmpty()) assigned.countDown();
                }
            }
        }, "member-" + a[1]);
        t.setDaemon(true);
        t.start();
        MEMBERS.put(a[1], t);
        MEMBER_STOP.put(a[1], stop);
        if (!assigned.await(30, TimeUnit.SECONDS)) {
            System.out.println("member of " + a[1] + " got no assignment within 30 s");
            return 1;
        }
        System.out.println("member of " + a[1] + " assigned");
        return 0;
    }

    static int memberStop(String[] a) throws Exception {
        java.util.concurrent.atomic.AtomicBoolean stop = MEMBER_STOP.remove(a[0]);
        Thread t = MEMBERS.remove(a[0]);
        if (stop == null) return 1;
        stop.set(true);
        t.join(15000);
        return 0;
    }

    static int txnOpen(String[] a) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", a[0]);
        p.put("transactional.id", a[1]);
        p.put("transaction.timeout.ms", "60000");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        producer.initTransactions();
        producer.beginTransaction();
        producer.send(new ProducerRecord<>(a[2], Integer.parseInt(a[3]), "txn-key", "txn-value")).get();
        producer.flush();
        OPEN_TXNS.put(a[1], producer);
        System.out.println("opened transaction " + a[1]);
        return 0;
    }

    static int txnCommit(String[] a) {
        KafkaProducer<String, String> producer = OPEN_TXNS.remove(a[0]);
        if (producer == null) {
            System.out.println("no open transaction " + a[0]);
            return 1;
        }
        producer.commitTransaction();
        producer.close(java.time.Duration.ofSeconds(5));
        System.out.println("committed transaction " + a[0]);
        return 0;
    }
}
