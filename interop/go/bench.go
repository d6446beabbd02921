package main

// -mode bench: one measurement for stan-ts's `pnpm bench` (bench/clients/go.ts starts it), done
// with stan.go the way its README shows, and printed as one JSON line:
// {"count","elapsedNs","cpuUs","startRss","maxRss","latUs"?}. The bench computes the rates and
// quantiles itself, with the same code as for the Node.js clients.

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	stan "github.com/nats-io/stan.go"
)

type benchResult struct {
	Count     int       `json:"count"`
	ElapsedNs int64     `json:"elapsedNs"`
	CPUUs     int64     `json:"cpuUs"`
	StartRss  int64     `json:"startRss"`
	MaxRss    int64     `json:"maxRss"`
	LatUs     []float64 `json:"latUs,omitempty"`
}

// cpuAndPeak returns this process's user+system CPU time (microseconds) and its peak RSS (bytes).
func cpuAndPeak() (int64, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	us := func(t syscall.Timeval) int64 { return int64(t.Sec)*1_000_000 + int64(t.Usec) }
	return us(ru.Utime) + us(ru.Stime), int64(ru.Maxrss) * 1024
}

// rss reads the resident set size now from /proc/self/statm (0 where there is none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// benchPayload matches bench/lib/meter.ts payload(): a..z repeated.
func benchPayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

func runBench(url, cluster, client, subject, figure string, count, size, window int) {
	if count <= 0 {
		fail("bench: -count must be > 0")
	}
	sc, err := stan.Connect(cluster, client, stan.NatsURL(url), stan.MaxPubAcksInflight(window))
	if err != nil {
		fail("connect: %v", err)
	}
	res := benchResult{Count: count}
	var cpu0 int64
	var t0 time.Time
	begin := func() {
		res.StartRss = rss()
		cpu0, _ = cpuAndPeak()
		t0 = time.Now()
	}
	switch figure {
	case "pub":
		data := benchPayload(size)
		done := make(chan error, 1)
		var acked atomic.Int64
		var failed atomic.Bool
		onAck := func(_ string, err error) {
			if err != nil && failed.CompareAndSwap(false, true) {
				done <- err
				return
			}
			if acked.Add(1) == int64(count) {
				done <- nil
			}
		}
		begin()
		for i := 0; i < count; i++ {
			// blocks while `window` publishes await their ack (MaxPubAcksInflight)
			if _, err := sc.PublishAsync(subject, data, onAck); err != nil {
				fail("publish: %v", err)
			}
		}
		if err := <-done; err != nil {
			fail("ack: %v", err)
		}
	case "sync":
		data := benchPayload(size)
		if err := sc.Publish(subject, data); err != nil {
			fail("publish: %v", err)
		}
		res.LatUs = make([]float64, count)
		begin()
		for i := 0; i < count; i++ {
			t := time.Now()
			if err := sc.Publish(subject, data); err != nil {
				fail("publish: %v", err)
			}
			res.LatUs[i] = float64(time.Since(t).Nanoseconds()) / 1000
		}
	case "replay":
		all := make(chan struct{})
		var n atomic.Int64
		begin()
		_, err := sc.Subscribe(subject, func(*stan.Msg) {
			if n.Add(1) == int64(count) {
				close(all)
			}
		}, stan.DeliverAllAvailable(), stan.MaxInflight(window))
		if err != nil {
			fail("subscribe: %v", err)
		}
		select {
		case <-all:
		case <-time.After(5 * time.Minute):
			fail("replay: %d/%d messages after 5 minutes", n.Load(), count)
		}
		// the subscription ends with the connection
	default:
		fail("bench: -figure must be pub, sync or replay")
	}
	res.ElapsedNs = time.Since(t0).Nanoseconds()
	cpu1, peak := cpuAndPeak()
	res.CPUUs = cpu1 - cpu0
	res.MaxRss = peak
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fail("write result: %v", err)
	}
	sc.Close()
}
