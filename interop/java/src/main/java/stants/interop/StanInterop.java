package stants.interop;

import io.nats.streaming.Message;
import io.nats.streaming.NatsStreaming;
import io.nats.streaming.Options;
import io.nats.streaming.StreamingConnection;
import io.nats.streaming.Subscription;
import io.nats.streaming.SubscriptionOptions;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Drives the official Java NATS Streaming client (io.nats:java-nats-streaming) from the same
 * command-line flags and JSON-lines protocol as interop/go (stan-interop), for stan-ts's
 * cross-language tests.
 *
 * <p>Flags are {@code -name=value} (or a bare {@code -name} for a true boolean). Publish: JSON
 * lines {"data":"<base64>"} on stdin, {"published":N,"ns":T} at the end. Subscribe:
 * {"ready":true} once subscribed, one {"seq","data","redelivered","subject"} line per delivery,
 * {"done":N,"ns":T} after -expect deliveries, -idle without one, or (with -stdinstop) the end of
 * stdin. Exit status 2 with "stan-interop-java: ..." on stderr on any failure.
 */
public final class StanInterop {
  private static final Pattern DATA = Pattern.compile("\"data\"\\s*:\\s*\"([A-Za-z0-9+/=]*)\"");

  private StanInterop() {}

  private static void fail(String what, Throwable e) {
    System.err.println("stan-interop-java: " + what + (e == null ? "" : ": " + e));
    System.exit(2);
  }

  /** Go-style durations: 500ms, 5s, 1m, or a bare number of seconds. */
  private static Duration duration(String s) {
    Matcher m = Pattern.compile("^(\\d+)(ms|s|m)?$").matcher(s);
    if (!m.matches()) {
      fail("bad duration " + s + " (use e.g. 500ms, 5s, 1m)", null);
    }
    long n = Long.parseLong(m.group(1));
    String unit = m.group(2) == null ? "s" : m.group(2);
    switch (unit) {
      case "ms":
        return Duration.ofMillis(n);
      case "m":
        return Duration.ofMinutes(n);
      default:
        return Duration.ofSeconds(n);
    }
  }

  private static final class Flags {
    final Map<String, String> values = new HashMap<>();

    Flags(String[] args) {
      for (String a : args) {
        if (!a.startsWith("-")) {
          fail("unexpected argument " + a + " (flags are -name=value)", null);
        }
        String body = a.replaceFirst("^--?", "");
        int eq = body.indexOf('=');
        if (eq < 0) {
          values.put(body, "true");
        } else {
          values.put(body.substring(0, eq), body.substring(eq + 1));
        }
      }
    }

    String str(String name, String def) {
      return values.getOrDefault(name, def);
    }

    long num(String name, long def) {
      String v = values.get(name);
      return v == null ? def : Long.parseLong(v);
    }

    boolean bool(String name, boolean def) {
      String v = values.get(name);
      return v == null ? def : Boolean.parseBoolean(v);
    }
  }

  private static String delivery(Message m) {
    return "{\"seq\":"
        + m.getSequence()
        + ",\"data\":\""
        + Base64.getEncoder().encodeToString(m.getData() == null ? new byte[0] : m.getData())
        + "\",\"redelivered\":"
        + m.isRedelivered()
        + ",\"subject\":\""
        + m.getSubject().replace("\\", "\\\\").replace("\"", "\\\"")
        + "\"}";
  }

  public static void main(String[] args) throws Exception {
    Flags f = new Flags(args);
    String mode = f.str("mode", "");
    String subject = f.str("subject", "interop");
    String cluster = f.str("cluster", "test-cluster");
    String client = f.str("client", "java-interop");
    Options opts = new Options.Builder().natsUrl(f.str("url", "nats://127.0.0.1:4222")).build();
    StreamingConnection sc = null;
    try {
      sc = NatsStreaming.connect(cluster, client, opts);
    } catch (Exception e) {
      fail("connect", e);
    }
    PrintWriter out =
        new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8)));
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 16);
    long t0 = System.nanoTime();
    switch (mode) {
      case "pub": {
        List<byte[]> payloads = new ArrayList<>();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
          if (line.isBlank()) continue;
          Matcher m = DATA.matcher(line);
          if (!m.find()) fail("stdin line without \"data\": " + line, null);
          payloads.add(Base64.getDecoder().decode(m.group(1)));
        }
        t0 = System.nanoTime();
        if (f.bool("async", false)) {
          CountDownLatch acked = new CountDownLatch(payloads.size());
          AtomicReference<Exception> first = new AtomicReference<>();
          for (byte[] p : payloads) {
            sc.publish(
                subject,
                p,
                (guid, err) -> {
                  if (err != null) first.compareAndSet(null, err);
                  acked.countDown();
                });
          }
          if (!acked.await(30, TimeUnit.SECONDS)) fail("acks: timed out", null);
          if (first.get() != null) fail("ack", first.get());
        } else {
          for (byte[] p : payloads) {
            try {
              sc.publish(subject, p);
            } catch (Exception e) {
              fail("publish", e);
            }
          }
        }
        out.println("{\"published\":" + payloads.size() + ",\"ns\":" + (System.nanoTime() - t0) + "}");
        break;
      }
      case "sub": {
        SubscriptionOptions.Builder so = new SubscriptionOptions.Builder();
        String start = f.str("start", "new");
        switch (start) {
          case "new":
            break;
          case "first":
            so.deliverAllAvailable();
            break;
          case "last":
            so.startWithLastReceived();
            break;
          case "seq":
            so.startAtSequence(f.num("seq", 0));
            break;
          case "time":
            so.startAtTimeDelta(duration(f.str("delta", "0s")));
            break;
          default:
            fail("unknown -start " + start, null);
        }
        String durable = f.str("durable", "");
        if (!durable.isEmpty()) so.durableName(durable);
        boolean manual = f.bool("manual", false);
        if (manual) so.manualAcks();
        if (f.values.containsKey("ackwait")) so.ackWait(duration(f.str("ackwait", "30s")));
        if (f.num("inflight", 0) > 0) so.maxInFlight((int) f.num("inflight", 0));
        LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        Object eof = new Object();
        String queue = f.str("queue", "");
        Subscription sub = null;
        try {
          sub =
              queue.isEmpty()
                  ? sc.subscribe(subject, events::add, so.build())
                  : sc.subscribe(subject, queue, events::add, so.build());
        } catch (Exception e) {
          fail("subscribe", e);
        }
        if (f.bool("stdinstop", false)) {
          Thread t =
              new Thread(
                  () -> {
                    try {
                      while (in.readLine() != null) {
                        // only the end of stdin matters
                      }
                    } catch (Exception e) {
                      // a broken stdin ends the run too
                    }
                    events.add(eof);
                  });
          t.setDaemon(true);
          t.start();
        }
        out.println("{\"ready\":true}");
        out.flush();
        long expect = f.num("expect", -1);
        long noAck = f.num("noack", 0);
        Duration idle = duration(f.str("idle", "5s"));
        long got = 0;
        long skipped = 0;
        t0 = System.nanoTime();
        while (expect < 0 || got < expect) {
          Object ev = events.poll(idle.toMillis(), TimeUnit.MILLISECONDS);
          if (ev == null || ev == eof) break;
          Message m = (Message) ev;
          if (manual) {
            if (skipped < noAck) {
              skipped++;
            } else {
              try {
                m.ack();
              } catch (Exception e) {
                fail("ack", e);
              }
            }
          }
          got++;
          out.println(delivery(m));
          out.flush();
        }
        long elapsed = System.nanoTime() - t0;
        try {
          if (f.bool("close", true)) sub.close();
          else sub.unsubscribe();
        } catch (Exception e) {
          fail("close subscription", e);
        }
        out.println("{\"done\":" + got + ",\"ns\":" + elapsed + "}");
        break;
      }
      default:
        fail("-mode must be pub or sub", null);
    }
    out.flush();
    try {
      sc.close();
    } catch (Exception e) {
      fail("close", e);
    }
    System.exit(0);
  }
}
