// Command stan-interop drives the official Go NATS Streaming client (stan.go)
// from command-line flags, for stan-ts's cross-language tests and benchmarks.
//
// Publish: reads messages as JSON lines {"data":"<base64>"} from stdin (or
// -count copies of -size bytes) and prints {"published":N,"ns":T} once every
// publish is acknowledged.
// Subscribe: prints {"ready":true} once subscribed, then one JSON line per
// delivery {"seq":N,"data":"<base64>","redelivered":bool,"subject":"..."}, and
// {"done":N,"ns":T} after -expect messages, -idle without deliveries or, with
// -stdinstop, the end of stdin.
// Bench: one measurement of stan-ts's bench (bench/clients/go.ts), see bench.go.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	stan "github.com/nats-io/stan.go"
)

type delivery struct {
	Seq         uint64 `json:"seq"`
	Data        string `json:"data"`
	Redelivered bool   `json:"redelivered"`
	Subject     string `json:"subject"`
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "stan-interop: "+format+"\n", a...)
	os.Exit(2)
}

func main() {
	mode := flag.String("mode", "", "pub or sub")
	url := flag.String("url", "nats://127.0.0.1:4222", "NATS URL")
	cluster := flag.String("cluster", "test-cluster", "cluster ID")
	client := flag.String("client", "go-interop", "client ID")
	subject := flag.String("subject", "interop", "channel")
	count := flag.Int("count", 0, "pub: messages of -size bytes instead of stdin")
	size := flag.Int("size", 0, "pub: payload size with -count")
	async := flag.Bool("async", false, "pub: asynchronous publish")
	expect := flag.Int("expect", -1, "sub: exit after this many deliveries")
	idle := flag.Duration("idle", 5*time.Second, "sub: exit after this long without deliveries")
	durable := flag.String("durable", "", "sub: durable name")
	queue := flag.String("queue", "", "sub: queue group")
	start := flag.String("start", "new", "sub: new|first|last|seq|time")
	startSeq := flag.Uint64("seq", 0, "sub: start sequence with -start seq")
	startDelta := flag.Duration("delta", 0, "sub: how far back with -start time")
	manual := flag.Bool("manual", false, "sub: manual acks")
	noAck := flag.Int("noack", 0, "sub (manual): leave the first N unacked")
	ackWait := flag.Duration("ackwait", 0, "sub: ack wait (0 = server default)")
	maxInflight := flag.Int("inflight", 0, "sub: max in flight (0 = default)")
	closeSub := flag.Bool("close", true, "sub: Close (keep durable) instead of Unsubscribe")
	stdinStop := flag.Bool("stdinstop", false, "sub: also stop when stdin ends")
	figure := flag.String("figure", "", "bench: pub|sync|replay")
	window := flag.Int("window", 16384, "bench: publishes awaiting an ack at most, or the replay's max in flight")
	flag.Parse()

	if *mode == "bench" {
		runBench(*url, *cluster, *client, *subject, *figure, *count, *size, *window)
		return
	}
	sc, err := stan.Connect(*cluster, *client, stan.NatsURL(*url))
	if err != nil {
		fail("connect: %v", err)
	}
	defer sc.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)

	switch *mode {
	case "pub":
		var payloads [][]byte
		if *count > 0 {
			p := make([]byte, *size)
			for i := 0; i < *count; i++ {
				payloads = append(payloads, p)
			}
		} else {
			in := bufio.NewScanner(os.Stdin)
			in.Buffer(make([]byte, 64*1024), 64*1024*1024)
			for in.Scan() {
				var m struct {
					Data string `json:"data"`
				}
				if err := json.Unmarshal(in.Bytes(), &m); err != nil {
					fail("stdin line: %v", err)
				}
				b, err := base64.StdEncoding.DecodeString(m.Data)
				if err != nil {
					fail("stdin base64: %v", err)
				}
				payloads = append(payloads, b)
			}
		}
		t0 := time.Now()
		if *async {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			wg.Add(len(payloads))
			for _, p := range payloads {
				_, err := sc.PublishAsync(*subject, p, func(_ string, err error) {
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
					wg.Done()
				})
				if err != nil {
					fail("publish: %v", err)
				}
			}
			wg.Wait()
			if firstErr != nil {
				fail("ack: %v", firstErr)
			}
		} else {
			for _, p := range payloads {
				if err := sc.Publish(*subject, p); err != nil {
					fail("publish: %v", err)
				}
			}
		}
		enc.Encode(map[string]any{"published": len(payloads), "ns": time.Since(t0).Nanoseconds()})
	case "sub":
		opts := []stan.SubscriptionOption{}
		switch *start {
		case "new":
		case "first":
			opts = append(opts, stan.DeliverAllAvailable())
		case "last":
			opts = append(opts, stan.StartWithLastReceived())
		case "seq":
			opts = append(opts, stan.StartAtSequence(*startSeq))
		case "time":
			opts = append(opts, stan.StartAtTimeDelta(*startDelta))
		default:
			fail("unknown -start %q", *start)
		}
		if *durable != "" {
			opts = append(opts, stan.DurableName(*durable))
		}
		if *manual {
			opts = append(opts, stan.SetManualAckMode())
		}
		if *ackWait > 0 {
			opts = append(opts, stan.AckWait(*ackWait))
		}
		if *maxInflight > 0 {
			opts = append(opts, stan.MaxInflight(*maxInflight))
		}
		msgs := make(chan *stan.Msg, 1024)
		handler := func(m *stan.Msg) { msgs <- m }
		var sub stan.Subscription
		if *queue != "" {
			sub, err = sc.QueueSubscribe(*subject, *queue, handler, opts...)
		} else {
			sub, err = sc.Subscribe(*subject, handler, opts...)
		}
		if err != nil {
			fail("subscribe: %v", err)
		}
		stop := make(chan struct{})
		if *stdinStop {
			go func() {
				io.Copy(io.Discard, os.Stdin)
				close(stop)
			}()
		}
		enc.Encode(map[string]any{"ready": true})
		out.Flush()
		got, skipped := 0, 0
		t0 := time.Now()
	loop:
		for *expect < 0 || got < *expect {
			select {
			case m := <-msgs:
				if *manual {
					if skipped < *noAck {
						skipped++
					} else if err := m.Ack(); err != nil {
						fail("ack: %v", err)
					}
				}
				got++
				enc.Encode(delivery{Seq: m.Sequence, Data: base64.StdEncoding.EncodeToString(m.Data), Redelivered: m.Redelivered, Subject: m.Subject})
				out.Flush()
			case <-time.After(*idle):
				break loop
			case <-stop:
				break loop
			}
		}
		elapsed := time.Since(t0)
		if *closeSub {
			err = sub.Close()
		} else {
			err = sub.Unsubscribe()
		}
		if err != nil {
			fail("close subscription: %v", err)
		}
		enc.Encode(map[string]any{"done": got, "ns": elapsed.Nanoseconds()})
	default:
		fail("-mode must be pub, sub or bench")
	}
}
