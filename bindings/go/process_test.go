package ringbuffer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the producer process of the cross-process
// test: run with these variables set, TestMain writes messages and exits
// instead of running tests.
const (
	producerPathEnv   = "MRB_GO_TEST_PRODUCER_RING"
	producerWriterEnv = "MRB_GO_TEST_PRODUCER_WRITER"
	producerCountEnv  = "MRB_GO_TEST_PRODUCER_COUNT"
	busyReaderEnv     = "MRB_GO_TEST_BUSY_READER_RING"
	dyingReaderEnv    = "MRB_GO_TEST_DYING_READER_RING"
)

const crossProcessMaxBody = 200

func TestMain(m *testing.M) {
	// The cgo pointer checks stay on: they are what catches a Go pointer
	// handed to C in memory that holds Go pointers.
	if strings.Contains(os.Getenv("GODEBUG"), "cgocheck=0") {
		fmt.Fprintln(os.Stderr, "refusing to test with GODEBUG=cgocheck=0")
		os.Exit(2)
	}
	if path := os.Getenv(producerPathEnv); path != "" {
		os.Exit(runProducerProcess(path))
	}
	if path := os.Getenv(busyReaderEnv); path != "" {
		os.Exit(runBusyReaderProcess(path))
	}
	if path := os.Getenv(dyingReaderEnv); path != "" {
		os.Exit(runDyingReaderProcess(path))
	}
	if path := os.Getenv(killedSubscriberEnv); path != "" {
		os.Exit(runKilledSubscriberProcess(path))
	}
	os.Exit(m.Run())
}

func runProducerProcess(path string) int {
	writer, err1 := strconv.ParseUint(os.Getenv(producerWriterEnv), 10, 32)
	count, err2 := strconv.ParseUint(os.Getenv(producerCountEnv), 10, 64)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "producer: bad environment:", err1, err2)
		return 2
	}
	r, err := OpenRingBuffer(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var msg []byte
	for seq := uint64(0); seq < count; seq++ {
		msg = appendTestMessage(msg[:0], uint32(writer), seq, crossProcessMaxBody)
		if err := r.WriteMsgContext(ctx, msg); err != nil {
			fmt.Fprintf(os.Stderr, "producer %d: message %d: %v\n", writer, seq, err)
			return 1
		}
	}
	return 0
}

// runBusyReaderProcess tries to read from a ring another process consumes.
func runBusyReaderProcess(path string) int {
	r, err := OpenRingBuffer(path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer r.Close()
	if _, err := r.ReadMsg(); err == ErrConsumerBusy {
		fmt.Println("ErrConsumerBusy")
	} else {
		fmt.Println("unexpected:", err)
	}
	return 0
}

// runDyingReaderProcess becomes the consumer, reads one message and exits
// without closing, like a crashed consumer.
func runDyingReaderProcess(path string) int {
	r, err := OpenRingBuffer(path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	msg, err := r.ReadMsg()
	fmt.Printf("%s %v\n", msg, err)
	return 0
}

// Two producer processes (this test binary, re-executed) write into a
// small ring while this process reads: every message arrives once, intact
// and in per-producer order, with full-ring waits and wake-ups crossing
// process boundaries.
func TestDeliveryAcrossProcesses(t *testing.T) {
	const producers = 2
	perProducer := scaled(50000)
	r, path := newTestRing(t, 16<<10)
	if _, err := r.ReadMsg(); err != ErrBufferEmpty { // become the consumer first
		t.Fatalf("ReadMsg on the new ring: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	exited := make(chan error, producers)
	for w := 1; w <= producers; w++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			producerPathEnv+"="+filepath.Clean(path),
			producerWriterEnv+"="+strconv.Itoa(w),
			producerCountEnv+"="+strconv.Itoa(perProducer))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func(w int) {
			err := cmd.Wait()
			if err != nil {
				err = fmt.Errorf("producer %d: %v", w, err)
				cancel() // the reader would otherwise wait for messages that never come
			}
			exited <- err
		}(w)
	}

	checker := newSequenceChecker(crossProcessMaxBody)
	for received := 0; received < producers*perProducer; received++ {
		msg, err := r.ReadMsgContext(ctx)
		if err != nil {
			t.Fatalf("ReadMsgContext after %d messages: %v", received, err)
		}
		if err := checker.check(msg); err != nil {
			t.Fatalf("message %d: %v", received, err)
		}
	}
	for i := 0; i < producers; i++ {
		if err := <-exited; err != nil {
			t.Fatal(err)
		}
	}
	for w := uint32(1); w <= producers; w++ {
		if got := checker.next[w]; got != uint64(perProducer) {
			t.Fatalf("producer %d: %d messages, want %d", w, got, perProducer)
		}
	}
	if _, err := r.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("ReadMsg after all: %v; want ErrBufferEmpty", err)
	}
	s, err := r.Stats()
	if err != nil || s.MessagesRead != uint64(producers*perProducer) {
		t.Fatalf("Stats() = %+v, %v", s, err)
	}
}

// While this process is the consumer, a reader in another process gets
// ErrConsumerBusy.
func TestConsumerBusyAcrossProcesses(t *testing.T) {
	r, path := newTestRing(t, 4096)
	if _, err := r.ReadMsg(); err != ErrBufferEmpty { // become the consumer
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), busyReaderEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reader process: %v: %s", err, out)
	}
	if got := string(out); got != "ErrConsumerBusy\n" {
		t.Fatalf("reader process printed %q", got)
	}
}

// A consumer process that dies without Close does not keep the role: the
// next reader takes over and resumes after the last message it read.
func TestDeadConsumerIsReplaced(t *testing.T) {
	r, path := newTestRing(t, 4096)
	for _, m := range []string{"first", "second"} {
		if _, err := r.WriteMsg([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), dyingReaderEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "first <nil>\n" {
		t.Fatalf("reader process: %v, printed %q", err, out)
	}
	msg, err := r.ReadMsg()
	if err != nil || string(msg) != "second" {
		t.Fatalf("ReadMsg after the consumer died = %q, %v; want \"second\"", msg, err)
	}
}
