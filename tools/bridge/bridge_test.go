// SPDX-License-Identifier: MIT

package main

// End-to-end tests against a real nats-server (JetStream, loopback, a
// temporary store), with the bridges as separate processes killed with
// SIGKILL. Environment (set by bridge_test.sh under Bazel):
//
//	MRB_NATS_SERVER  the nats-server binary (tools/setup.sh installs it)
//	MRB_CLI          the mrb command, the C producer
//	MRB_PYTHONPATH   a directory holding the mmap_ringbuffer package
//
// Without MRB_CLI or MRB_PYTHONPATH the two-ring test is skipped; without a
// nats-server every test fails.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var bridgeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bridge-test")
	if err != nil {
		panic(err)
	}
	bridgeBinary = filepath.Join(dir, "mrb-bridge")
	build := exec.Command("go", "build", "-o", bridgeBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mrb-bridge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// natsServer is a nats-server process with JetStream on a loopback port
// and a store that survives its restarts.
type natsServer struct {
	t     *testing.T
	bin   string
	port  int
	store string
	cmd   *exec.Cmd
	url   string
}

func startServer(t *testing.T) *natsServer {
	t.Helper()
	bin := os.Getenv("MRB_NATS_SERVER")
	if bin == "" {
		t.Fatal("MRB_NATS_SERVER is not set: run tools/setup.sh, which installs nats-server, and bridge_test.sh")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &natsServer{t: t, bin: bin, port: port, store: t.TempDir(),
		url: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	s.start()
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *natsServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-sd", s.store)
	log, err := os.OpenFile(filepath.Join(s.store, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	log.Close()
	// Ready when JetStream answers.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		nc, err := nats.Connect(s.url, nats.Timeout(time.Second))
		if err == nil {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
			if err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("nats-server on port %d did not become ready", s.port)
}

func (s *natsServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// bridge runs mrb-bridge with args, logging into the test's directory.
type bridge struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd
	log  string
}

func newBridge(t *testing.T, logName string, args ...string) *bridge {
	b := &bridge{t: t, args: args, log: filepath.Join(t.TempDir(), logName)}
	b.start()
	t.Cleanup(func() { b.kill() })
	return b
}

func (b *bridge) start() {
	b.t.Helper()
	b.cmd = exec.Command(bridgeBinary, b.args...)
	f, err := os.OpenFile(b.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmd.Stdout, b.cmd.Stderr = f, f
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	f.Close()
}

func (b *bridge) kill() {
	if b.cmd != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		b.cmd = nil
	}
}

// stop sends SIGTERM, once the bridge handles it, and waits for a clean
// exit.
func (b *bridge) stop() {
	b.t.Helper()
	running := fmt.Sprintf("running (pid %d)", b.cmd.Process.Pid)
	waitFor(b.t, "the bridge to start", 10*time.Second, func() bool {
		log, _ := os.ReadFile(b.log)
		return bytes.Contains(log, []byte(running))
	})
	b.cmd.Process.Signal(syscall.SIGTERM)
	err := b.cmd.Wait()
	b.cmd = nil
	if err != nil {
		log, _ := os.ReadFile(b.log)
		b.t.Fatalf("bridge %v exited with %v:\n%s", b.args, err, log)
	}
}

func (b *bridge) dumpOnFailure() {
	b.t.Cleanup(func() {
		if b.t.Failed() {
			log, _ := os.ReadFile(b.log)
			b.t.Logf("log of mrb-bridge %v:\n%s", b.args, log)
		}
	})
}

// testMessage is message number n: its number (8 bytes LE), the CRC-32 of
// its body (4 bytes LE) and a body of 1..300 bytes derived from n.
func testMessage(n uint64) []byte {
	body := make([]byte, 1+int(n*7919%300))
	x := n*0x9E3779B97F4A7C15 + 1
	for i := range body {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		body[i] = byte(x)
	}
	m := make([]byte, 12, 12+len(body))
	binary.LittleEndian.PutUint64(m, n)
	binary.LittleEndian.PutUint32(m[8:], crc32.ChecksumIEEE(body))
	return append(m, body...)
}

// checkMessage returns the number of a message made by testMessage, or an
// error if its checksum does not match.
func checkMessage(m []byte) (uint64, error) {
	if len(m) < 13 {
		return 0, fmt.Errorf("message of %d bytes", len(m))
	}
	n := binary.LittleEndian.Uint64(m)
	if crc32.ChecksumIEEE(m[12:]) != binary.LittleEndian.Uint32(m[8:]) {
		return n, fmt.Errorf("message %d: checksum mismatch", n)
	}
	return n, nil
}

func createRing(t *testing.T, path string, size int) *ringbuffer.RingBuffer {
	t.Helper()
	r, err := ringbuffer.NewRingBuffer(path, size, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func jsContext(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func makeStream(t *testing.T, js jetstream.JetStream, name, subject string) {
	t.Helper()
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// streamNumbers reads the whole stream and returns the message numbers in
// stream order.
func streamNumbers(t *testing.T, js jetstream.JetStream, stream string, want int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := int(si.State.Msgs)
	var numbers []uint64
	for len(numbers) < total {
		batch, err := cons.Fetch(total-len(numbers), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			n, err := checkMessage(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			numbers = append(numbers, n)
			got++
		}
		if got == 0 {
			t.Fatalf("stream %s: read %d of %d messages", stream, len(numbers), total)
		}
	}
	return numbers
}

// requireExactlyOnceInOrder checks that numbers is 0, 1, ..., want-1.
func requireExactlyOnceInOrder(t *testing.T, what string, numbers []uint64, want int) {
	t.Helper()
	seen := make(map[uint64]int, want)
	for _, n := range numbers {
		seen[n]++
	}
	missing, dup := 0, 0
	for i := 0; i < want; i++ {
		switch seen[uint64(i)] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing != 0 || dup != 0 || len(numbers) != want {
		t.Fatalf("%s: %d messages for %d: %d missing, %d more than once", what, len(numbers), want, missing, dup)
	}
	for i, n := range numbers {
		if n != uint64(i) {
			t.Fatalf("%s: message %d at place %d: out of order", what, n, i)
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamCount(js jetstream.JetStream, stream string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	si, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(si.State.Msgs)
}

// The whole path, across languages: a C producer (the mrb command) on ring
// A, mrb-bridge out into a stream, mrb-bridge in into ring B, a Python
// consumer on ring B checking numbers and checksums.
func TestTwoRingsTwoBridgesCToPython(t *testing.T) {
	cli, pythonPath := os.Getenv("MRB_CLI"), os.Getenv("MRB_PYTHONPATH")
	if cli == "" || pythonPath == "" {
		t.Skip("MRB_CLI and MRB_PYTHONPATH are needed (bridge_test.sh sets them)")
	}
	const count = 5000
	srv := startServer(t)
	dir := t.TempDir()
	ringA, ringB := filepath.Join(dir, "a.ring"), filepath.Join(dir, "b.ring")
	createRing(t, ringA, 64<<10).Close()
	createRing(t, ringB, 64<<10).Close()
	out := newBridge(t, "out.log", "out", "--ring", ringA, "--subject", "e2e.a", "--stream", "E2E",
		"--server", srv.url, "--stats", "0")
	out.dumpOnFailure()
	in := newBridge(t, "in.log", "in", "--ring", ringB, "--subject", "e2e.a", "--stream", "E2E",
		"--server", srv.url, "--seq-prefix", "--stats", "0")
	in.dumpOnFailure()

	consumer := exec.Command("/usr/bin/python3", "testdata/consumer.py", ringB, strconv.Itoa(count), "60")
	consumer.Env = append(os.Environ(), "PYTHONPATH="+pythonPath, "PYTHONDONTWRITEBYTECODE=1")
	var consumerOut, consumerErr bytes.Buffer
	consumer.Stdout, consumer.Stderr = &consumerOut, &consumerErr
	if err := consumer.Start(); err != nil {
		t.Fatal(err)
	}
	// Frames for `mrb write --framed --block`: a 4-byte LE length, bytes.
	var frames bytes.Buffer
	for n := uint64(0); n < count; n++ {
		m := testMessage(n)
		binary.Write(&frames, binary.LittleEndian, uint32(len(m)))
		frames.Write(m)
	}
	producer := exec.Command(cli, "write", ringA, "--framed", "--block")
	producer.Stdin = &frames
	if out, err := producer.CombinedOutput(); err != nil {
		t.Fatalf("mrb write: %v\n%s", err, out)
	}
	if err := consumer.Wait(); err != nil {
		t.Fatalf("consumer: %v\n%s%s", err, consumerOut.String(), consumerErr.String())
	}
	var raw map[string]int
	if err := json.Unmarshal(bytes.TrimSpace(consumerOut.Bytes()), &raw); err != nil {
		t.Fatalf("consumer output %q: %v", consumerOut.String(), err)
	}
	if raw["taken"] != count || raw["duplicates"] != 0 || raw["out_of_order"] != 0 ||
		raw["bad_checksum"] != 0 || raw["next"] != count {
		t.Fatalf("consumer report %s (want %d taken, no duplicate, in order, checksums good)", consumerOut.String(), count)
	}
	// Clean stops; the stream holds each message once; ring A is all released.
	out.stop()
	in.stop()
	numbers := streamNumbers(t, jsContext(t, srv.url), "E2E", count)
	requireExactlyOnceInOrder(t, "stream", numbers, count)
	a, err := ringbuffer.OpenRingBuffer(ringA)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if st, _ := a.Stats(); st.UsedBytes != 0 || st.MessagesRead != count {
		t.Fatalf("ring A after the bridge stopped: %d bytes held, %d messages released", st.UsedBytes, st.MessagesRead)
	}
}

// kill -9 of the outbound bridge at random instants: the stream holds every
// message exactly once, in order (the ring keeps what JetStream did not
// acknowledge; the message id makes JetStream drop what it had).
func TestOutBridgeKilled(t *testing.T) {
	const count = 20000
	srv := startServer(t)
	js := jsContext(t, srv.url)
	makeStream(t, js, "OUTKILL", "outkill")
	ringA := filepath.Join(t.TempDir(), "a.ring")
	a := createRing(t, ringA, 1<<20)
	out := newBridge(t, "out.log", "out", "--ring", ringA, "--subject", "outkill",
		"--server", srv.url, "--stats", "0", "--batch", "64")
	out.dumpOnFailure()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	written := uint64(0)
	kills, busyKills := 0, 0
	for written < count {
		// Write a slice of messages, then kill the bridge at a random
		// instant while it forwards them, and start it again.
		end := written + count/8
		if end > count {
			end = count
		}
		for ; written < end; written++ {
			if err := a.WriteMsgContext(context.Background(), testMessage(written)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Duration(rng.Intn(40)) * time.Millisecond)
		if st, err := a.Stats(); err == nil && st.UsedBytes > 0 {
			busyKills++ // messages read or waiting, not all released
		}
		out.kill()
		kills++
		out.start()
	}
	t.Logf("%d kills, %d of them with messages not yet released", kills, busyKills)
	// Every message reaches the stream, and the last bridge, which reads
	// again what its killed predecessors had not released, releases all.
	waitFor(t, "the stream to hold every message and ring A to be released", 30*time.Second, func() bool {
		st, err := a.Stats()
		return err == nil && st.UsedBytes == 0 && streamCount(js, "OUTKILL") >= count
	})
	out.stop()
	numbers := streamNumbers(t, js, "OUTKILL", count)
	requireExactlyOnceInOrder(t, "stream after "+strconv.Itoa(kills)+" kills", numbers, count)
	if st, _ := a.Stats(); st.UsedBytes != 0 {
		t.Fatalf("ring A: %d bytes still held", st.UsedBytes)
	}
}

// readRingB reads ring B (as its consumer) until want distinct stream
// sequences are taken or the timeout passes, applying the dedup rule of
// mrb-bridge in --seq-prefix. It returns the message numbers taken and how
// many duplicates the rule dropped.
func readRingB(t *testing.T, path string, want int, timeout time.Duration) ([]uint64, int) {
	r, err := ringbuffer.OpenRingBuffer(path)
	if err != nil {
		t.Error(err)
		return nil, 0
	}
	defer r.Close()
	var numbers []uint64
	dups := 0
	last := uint64(0)
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(timeout)
	for len(numbers) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		n, err := r.ReadMsgIntoContext(ctx, buf)
		cancel()
		if err != nil {
			continue
		}
		seq := binary.BigEndian.Uint64(buf)
		if seq <= last {
			dups++
			continue
		}
		last = seq
		num, err := checkMessage(buf[8:n])
		if err != nil {
			t.Error(err)
			return numbers, dups
		}
		numbers = append(numbers, num)
	}
	return numbers, dups
}

// kill -9 of the inbound bridge: ring B receives every message, and with
// the dedup rule (stream sequence above the last taken) exactly once, in
// order. Ring B is small, so the bridge also waits for room (backpressure).
func TestInBridgeKilled(t *testing.T) {
	const count = 20000
	srv := startServer(t)
	js := jsContext(t, srv.url)
	makeStream(t, js, "INKILL", "inkill")
	for n := uint64(0); n < count; n++ {
		if _, err := js.PublishAsync("inkill", testMessage(n)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing the stream timed out")
	}
	ringB := filepath.Join(t.TempDir(), "b.ring")
	createRing(t, ringB, 64<<10).Close()
	in := newBridge(t, "in.log", "in", "--ring", ringB, "--subject", "inkill", "--stream", "INKILL",
		"--server", srv.url, "--seq-prefix", "--stats", "0")
	in.dumpOnFailure()
	type result struct {
		numbers []uint64
		dups    int
	}
	done := make(chan result, 1)
	go func() {
		numbers, dups := readRingB(t, ringB, count, 60*time.Second)
		done <- result{numbers, dups}
	}()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for kill := 0; kill < 6; kill++ {
		time.Sleep(time.Duration(20+rng.Intn(120)) * time.Millisecond)
		in.kill()
		in.start()
	}
	r := <-done
	in.stop()
	t.Logf("duplicates that reached ring B and the rule dropped: %d", r.dups)
	requireExactlyOnceInOrder(t, "ring B", r.numbers, count)
}

// nats-server killed (SIGKILL) and restarted twice while both bridges run
// and the producer writes: nothing is lost, the bridges recover by
// themselves, and ring B gets every message exactly once, in order.
func TestServerRestarted(t *testing.T) {
	const count = 12000
	srv := startServer(t)
	dir := t.TempDir()
	ringA, ringB := filepath.Join(dir, "a.ring"), filepath.Join(dir, "b.ring")
	a := createRing(t, ringA, 1<<20)
	createRing(t, ringB, 1<<20).Close()
	out := newBridge(t, "out.log", "out", "--ring", ringA, "--subject", "restart", "--stream", "RESTART",
		"--server", srv.url, "--stats", "0")
	out.dumpOnFailure()
	in := newBridge(t, "in.log", "in", "--ring", ringB, "--subject", "restart", "--stream", "RESTART",
		"--server", srv.url, "--seq-prefix", "--stats", "0")
	in.dumpOnFailure()
	type result struct {
		numbers []uint64
		dups    int
	}
	done := make(chan result, 1)
	go func() {
		numbers, dups := readRingB(t, ringB, count, 60*time.Second)
		done <- result{numbers, dups}
	}()
	// The producer writes at about 4000 messages/s; the server dies twice.
	for n := uint64(0); n < count; n++ {
		if err := a.WriteMsgContext(context.Background(), testMessage(n)); err != nil {
			t.Fatal(err)
		}
		if n%40 == 39 {
			time.Sleep(10 * time.Millisecond)
		}
		if n == count/3 || n == 2*count/3 {
			srv.kill()
			time.Sleep(300 * time.Millisecond)
			srv.start()
		}
	}
	r := <-done
	t.Logf("duplicates that reached ring B and the rule dropped: %d", r.dups)
	requireExactlyOnceInOrder(t, "ring B", r.numbers, count)
	out.stop()
	in.stop()
	numbers := streamNumbers(t, jsContext(t, srv.url), "RESTART", count)
	requireExactlyOnceInOrder(t, "stream", numbers, count)
}

// The outbound bridge as a named durable subscriber of a fan-out ring,
// beside a local subscriber: both get every message; killed and started
// again under the same name, the bridge resumes where it released, and the
// stream holds each message once, in order.
func TestOutBridgeAsSubscriber(t *testing.T) {
	const count = 6000
	srv := startServer(t)
	js := jsContext(t, srv.url)
	ringA := filepath.Join(t.TempDir(), "fanout.ring")
	a, err := ringbuffer.CreateRingBuffer(ringA, 256<<10, ringbuffer.CreateOptions{Remove: true, FanOut: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	local, err := ringbuffer.Subscribe(ringA, ringbuffer.SubscribeOptions{Name: "local"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	out := newBridge(t, "out.log", "out", "--ring", ringA, "--subject", "fanout", "--stream", "FANOUT",
		"--subscriber", "nats", "--server", srv.url, "--stats", "0", "--batch", "64")
	out.dumpOnFailure()
	// The producer starts once the bridge has joined (a new subscriber
	// joins at the live end).
	waitFor(t, "the bridge to join as a subscriber", 10*time.Second, func() bool {
		log, _ := os.ReadFile(out.log)
		return bytes.Contains(log, []byte("forwarding "))
	})
	localGot := make(chan []uint64, 1)
	go func() {
		var numbers []uint64
		buf := make([]byte, 1<<16)
		for len(numbers) < count {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			n, err := local.ReadMsgIntoContext(ctx, buf)
			cancel()
			if err != nil {
				break
			}
			num, _ := checkMessage(buf[:n])
			numbers = append(numbers, num)
		}
		localGot <- numbers
	}()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for n := uint64(0); n < count; n++ {
		if err := a.WriteMsgContext(context.Background(), testMessage(n)); err != nil {
			t.Fatal(err)
		}
		if n%(count/4) == count/4-1 {
			time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
			out.kill()
			out.start()
		}
	}
	waitFor(t, "the stream to hold every message", 30*time.Second, func() bool {
		return streamCount(js, "FANOUT") >= count
	})
	out.stop()
	requireExactlyOnceInOrder(t, "stream", streamNumbers(t, js, "FANOUT", count), count)
	requireExactlyOnceInOrder(t, "local subscriber", <-localGot, count)
}

// The bench subcommand runs every path end to end (a few messages: a smoke
// test, not a measurement).
func TestBenchSmoke(t *testing.T) {
	srv := startServer(t)
	cmd := exec.Command(bridgeBinary, "bench", "--server", srv.url, "--count", "300",
		"--latency-count", "100", "--rate", "2000", "--sizes", "64", "--dir", t.TempDir(),
		"--paths", "core,jetstream,out,in,bridge")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mrb-bridge bench: %v\n%s", err, out)
	}
	for _, path := range []string{"core", "jetstream", "out", "in", "bridge"} {
		if !bytes.Contains(out, []byte("| "+path+" | 64 B | ")) {
			t.Fatalf("no %s row in\n%s", path, out)
		}
	}
}
