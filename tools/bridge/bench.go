// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The bench subcommand: the same messages (count, size) over three paths in
// one run, each measured from the sender's timestamp in the message to its
// arrival:
//
//	core      NATS publish → subscribe (as nats bench does; no persistence)
//	jetstream async publish to a stream → ordered consumer (no rings)
//	bridge    ring A → mrb-bridge out → stream → mrb-bridge in → ring B
//
// The senders go as fast as they are let (core: as fast as the client
// takes them; the bridge: as fast as ring A has room), so the latencies are
// under full load, queueing included.

type benchResult struct {
	path      string
	size      int
	count     int
	elapsed   time.Duration
	latencies []time.Duration
}

func mainBench(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	server := fs.String("server", nats.DefaultURL, "NATS server URL (JetStream enabled)")
	count := fs.Int("count", 20000, "messages per path and size")
	sizesArg := fs.String("sizes", "64,4096", "message sizes, bytes")
	dir := fs.String("dir", "", "directory for the bench rings (default: a temporary one)")
	rate := fs.Float64("rate", 2000, "messages/s of the latency runs")
	latencyCount := fs.Int("latency-count", 2000, "messages per latency run")
	pathsArg := fs.String("paths", "core,jetstream,bridge", "paths to run: core, jetstream, bridge, out, in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizes []int
	for _, s := range strings.Split(*sizesArg, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 16 {
			return fmt.Errorf("--sizes: %q is not a size >= 16", s)
		}
		sizes = append(sizes, n)
	}
	paths := strings.Split(*pathsArg, ",")
	for _, p := range paths {
		switch p {
		case "core", "jetstream", "bridge", "out", "in":
		default:
			return fmt.Errorf("--paths: unknown path %q", p)
		}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "mrb-bridge-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *rate <= 0 || *latencyCount < 100 {
		return fmt.Errorf("need --rate > 0 and --latency-count >= 100")
	}
	interval := time.Duration(float64(time.Second) / *rate)
	var rows []benchRow
	for _, size := range sizes {
		for _, path := range paths {
			run := func(count int, interval time.Duration) (benchResult, error) {
				switch path {
				case "core":
					return benchCore(ctx, *server, size, count, interval)
				case "jetstream":
					return benchJetStream(ctx, *server, size, count, interval)
				default:
					return benchBridge(ctx, path, *server, *dir, size, count, interval)
				}
			}
			full, err := run(*count, 0)
			if err != nil {
				return fmt.Errorf("%s, %d B: %w", path, size, err)
			}
			paced, err := run(*latencyCount, interval)
			if err != nil {
				return fmt.Errorf("%s, %d B, paced: %w", path, size, err)
			}
			rows = append(rows, benchRow{full, paced})
		}
	}
	fmt.Fprintf(w, "msgs/s: %d messages sent as fast as the path takes them; latency: %d messages at %.0f msgs/s, "+
		"from the sender's timestamp to arrival\n\n", *count, *latencyCount, *rate)
	printBench(w, rows)
	return nil
}

type benchRow struct{ full, paced benchResult }

func printBench(w io.Writer, rows []benchRow) {
	fmt.Fprintf(w, "| path | size | msgs/s | vs core | p50 | p90 | p99 | max |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
	core := map[int]float64{}
	for _, row := range rows {
		r := row.full
		rate := float64(r.count) / r.elapsed.Seconds()
		if r.path == "core" {
			core[r.size] = rate
		}
		l := row.paced.latencies
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		pct := func(p float64) time.Duration { return l[int(p*float64(len(l)-1))] }
		ratio := "-"
		if c := core[r.size]; c > 0 {
			ratio = fmt.Sprintf("%.2f", rate/c)
		}
		fmt.Fprintf(w, "| %s | %d B | %.0f | %s | %s | %s | %s | %s |\n", r.path, r.size,
			rate, ratio, us(pct(0.5)), us(pct(0.9)), us(pct(0.99)), us(l[len(l)-1]))
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f us", float64(d.Nanoseconds())/1e3) }

// payload is a message of size bytes stamped with the time now.
func payload(buf []byte) []byte {
	binary.LittleEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
	return buf
}

// publishAsync publishes, waiting while the client has too many
// publishes outstanding.
func publishAsync(js jetstream.JetStream, subject string, data []byte) error {
	for {
		_, err := js.PublishAsync(subject, data)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// pace waits until message i's turn when sending every interval (0: at
// once).
func pace(start time.Time, i int, interval time.Duration) {
	if interval > 0 {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
	}
}

func since(msg []byte) time.Duration {
	return time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(msg)))
}

// collector gathers count latencies and the time of the last arrival.
type collector struct {
	mu        sync.Mutex
	latencies []time.Duration
	want      int
	done      chan struct{}
	last      time.Time
}

func newCollector(count int) *collector {
	return &collector{latencies: make([]time.Duration, 0, count), want: count, done: make(chan struct{})}
}

func (c *collector) add(msg []byte) {
	d := since(msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.latencies) == c.want {
		return
	}
	c.latencies = append(c.latencies, d)
	if len(c.latencies) == c.want {
		c.last = time.Now()
		close(c.done)
	}
}

func (c *collector) wait(ctx context.Context, start time.Time) (time.Duration, error) {
	select {
	case <-c.done:
		return c.last.Sub(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(2 * time.Minute):
		c.mu.Lock()
		defer c.mu.Unlock()
		return 0, fmt.Errorf("timed out with %d of %d messages", len(c.latencies), c.want)
	}
}

func benchCore(ctx context.Context, server string, size, count int, interval time.Duration) (benchResult, error) {
	sub, err := nats.Connect(server)
	if err != nil {
		return benchResult{}, err
	}
	defer sub.Close()
	pub, err := nats.Connect(server)
	if err != nil {
		return benchResult{}, err
	}
	defer pub.Close()
	subject := fmt.Sprintf("bench.core.%d.%d", size, interval)
	c := newCollector(count)
	s, err := sub.Subscribe(subject, func(m *nats.Msg) { c.add(m.Data) })
	if err != nil {
		return benchResult{}, err
	}
	s.SetPendingLimits(-1, -1)
	if err := sub.Flush(); err != nil {
		return benchResult{}, err
	}
	buf := make([]byte, size)
	start := time.Now()
	for i := 0; i < count; i++ {
		pace(start, i, interval)
		if err := pub.Publish(subject, payload(buf)); err != nil {
			return benchResult{}, err
		}
	}
	if err := pub.Flush(); err != nil {
		return benchResult{}, err
	}
	elapsed, err := c.wait(ctx, start)
	return benchResult{"core", size, count, elapsed, c.latencies}, err
}

func benchStream(ctx context.Context, js jetstream.JetStream, name, subject string) error {
	_ = js.DeleteStream(ctx, name)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	})
	return err
}

func benchJetStream(ctx context.Context, server string, size, count int, interval time.Duration) (benchResult, error) {
	subConn, err := nats.Connect(server)
	if err != nil {
		return benchResult{}, err
	}
	defer subConn.Close()
	pubConn, err := nats.Connect(server)
	if err != nil {
		return benchResult{}, err
	}
	defer pubConn.Close()
	js, err := jetstream.New(pubConn, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return benchResult{}, err
	}
	name, subject := fmt.Sprintf("BENCHJS%d_%d", size, interval), fmt.Sprintf("bench.js.%d.%d", size, interval)
	if err := benchStream(ctx, js, name, subject); err != nil {
		return benchResult{}, err
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), name)
	jsSub, err := jetstream.New(subConn)
	if err != nil {
		return benchResult{}, err
	}
	cons, err := jsSub.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return benchResult{}, err
	}
	c := newCollector(count)
	cc, err := cons.Consume(func(m jetstream.Msg) { c.add(m.Data()) })
	if err != nil {
		return benchResult{}, err
	}
	defer cc.Stop()
	buf := make([]byte, size)
	start := time.Now()
	for i := 0; i < count; i++ {
		pace(start, i, interval)
		if err := publishAsync(js, subject, payload(buf)); err != nil {
			return benchResult{}, err
		}
	}
	elapsed, err := c.wait(ctx, start)
	return benchResult{"jetstream", size, count, elapsed, c.latencies}, err
}

// benchBridge runs one of the bridge paths: "bridge" (ring A → out →
// stream → in → ring B), "out" (ring A → out → stream → an ordered
// consumer) or "in" (async publish → stream → in → ring B).
// startBridge runs this executable with args and waits for a line of its
// log containing ready.
func startBridge(ctx context.Context, ready string, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	seen := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stderr)
		once := false
		for scanner.Scan() {
			if !once && strings.Contains(scanner.Text(), ready) {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
		return cmd, nil
	case <-time.After(20 * time.Second):
	case <-ctx.Done():
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("mrb-bridge %s did not start", args[0])
}

func benchBridge(ctx context.Context, path, server, dir string, size, count int, interval time.Duration) (benchResult, error) {
	useOut, useIn := path != "in", path != "out"
	pathA := filepath.Join(dir, fmt.Sprintf("a-%d.ring", size))
	pathB := filepath.Join(dir, fmt.Sprintf("b-%d.ring", size))
	const ringSize = 64 << 20
	name := fmt.Sprintf("BENCH%s%d_%d", strings.ToUpper(path), size, interval)
	subject := fmt.Sprintf("bench.%s.%d.%d", path, size, interval)
	admin, err := nats.Connect(server)
	if err != nil {
		return benchResult{}, err
	}
	defer admin.Close()
	adminJS, err := jetstream.New(admin, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return benchResult{}, err
	}
	if err := benchStream(ctx, adminJS, name, subject); err != nil {
		return benchResult{}, err
	}
	defer adminJS.DeleteStream(context.WithoutCancel(ctx), name)

	bctx, stop := context.WithCancel(ctx)
	defer stop()
	c := newCollector(count)
	// The bridges run as processes of their own (this executable), as
	// deployed: in one process with the bench, on a 2-CPU machine, their
	// goroutines and the bench's delayed each other (p90 latency several
	// times that of separate processes).
	var bridges []*exec.Cmd
	defer func() {
		for _, cmd := range bridges {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}()
	var send func([]byte) error
	if useOut {
		a, err := ringbuffer.NewRingBuffer(pathA, ringSize, true)
		if err != nil {
			return benchResult{}, err
		}
		defer a.Close()
		send = func(m []byte) error { return a.WriteMsgContext(bctx, m) }
		cmd, err := startBridge(ctx, "forwarding ", "out", "--ring", pathA, "--subject", subject,
			"--server", server, "--stats", "0")
		if err != nil {
			return benchResult{}, err
		}
		bridges = append(bridges, cmd)
	} else {
		send = func(m []byte) error { return publishAsync(adminJS, subject, m) }
	}
	if useIn {
		b, err := ringbuffer.NewRingBuffer(pathB, ringSize, true)
		if err != nil {
			return benchResult{}, err
		}
		defer b.Close()
		state := pathB + ".state"
		os.Remove(state)
		cmd, err := startBridge(ctx, "reading stream ", "in", "--ring", pathB, "--subject", subject,
			"--stream", name, "--state", state, "--server", server, "--stats", "0")
		if err != nil {
			return benchResult{}, err
		}
		bridges = append(bridges, cmd)
		go func() {
			dst := make([]byte, size)
			for i := 0; i < count; i++ {
				n, err := b.ReadMsgIntoContext(bctx, dst)
				if err != nil {
					return
				}
				c.add(dst[:n])
			}
		}()
	} else {
		subConn, err := nats.Connect(server)
		if err != nil {
			return benchResult{}, err
		}
		defer subConn.Close()
		subJS, err := jetstream.New(subConn)
		if err != nil {
			return benchResult{}, err
		}
		cons, err := subJS.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return benchResult{}, err
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { c.add(m.Data()) })
		if err != nil {
			return benchResult{}, err
		}
		defer cc.Stop()
	}
	buf := make([]byte, size)
	start := time.Now()
	for i := 0; i < count; i++ {
		pace(start, i, interval)
		if err := send(payload(buf)); err != nil {
			return benchResult{}, err
		}
	}
	elapsed, err := c.wait(ctx, start)
	stop()
	return benchResult{path, size, count, elapsed, c.latencies}, err
}
