package ringbuffer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The behaviours of core/test/subscriber_test.cc through the Go API, with
// the same exact figures. Message seq is seq (u64, little-endian) then a
// pattern, 40 bytes by default: a 64-byte record (16-byte header, 16-byte
// alignment), so a 4 KiB ring holds exactly 64 and a 1 KiB ring 16.

func subMsg(seq uint64, n int) []byte {
	m := make([]byte, n)
	for i := range m {
		m[i] = byte(seq*13 + uint64(i)*7)
	}
	binary.LittleEndian.PutUint64(m, seq)
	return m
}

// newFanOutRing creates a fan-out ring of size bytes in a per-test
// directory and closes it when the test ends.
func newFanOutRing(t testing.TB, size int) (*RingBuffer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fanout.mrb")
	r, err := CreateRingBuffer(path, size, CreateOptions{FanOut: true})
	if err != nil {
		t.Fatalf("CreateRingBuffer(%q, %d, FanOut): %v", path, size, err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

func subscribe(t testing.TB, path string, opts SubscribeOptions) *Subscriber {
	t.Helper()
	s, err := Subscribe(path, opts)
	if err != nil {
		t.Fatalf("Subscribe(%q, %+v): %v", path, opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func writeSeq(r *RingBuffer, seq uint64) error {
	_, err := r.WriteMsg(subMsg(seq, 40))
	return err
}

func mustWrite(t testing.TB, r *RingBuffer, seq uint64) {
	t.Helper()
	if err := writeSeq(r, seq); err != nil {
		t.Fatalf("WriteMsg(message %d): %v", seq, err)
	}
}

// next reads s's next message and returns its sequence number, checking
// the rest of its bytes.
func next(t testing.TB, s *Subscriber) (uint64, error) {
	t.Helper()
	msg, err := s.ReadMsg()
	if err != nil {
		return 0, err
	}
	if len(msg) < 8 {
		t.Fatalf("message of %d bytes", len(msg))
	}
	seq := binary.LittleEndian.Uint64(msg)
	if string(msg) != string(subMsg(seq, len(msg))) {
		t.Fatalf("message %d: torn or foreign bytes", seq)
	}
	return seq, nil
}

func wantNext(t testing.TB, s *Subscriber, want uint64) {
	t.Helper()
	seq, err := next(t, s)
	if err != nil || seq != want {
		t.Fatalf("next message: %d, %v; want %d", seq, err, want)
	}
}

func info(t testing.TB, s *Subscriber) SubscriberInfo {
	t.Helper()
	in, err := s.Info()
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return in
}

func TestSubscriberModes(t *testing.T) {
	q, qpath := newTestRing(t, 4096)
	if fan, err := q.IsFanOut(); fan || err != nil {
		t.Fatalf("IsFanOut of a queue ring = %v, %v", fan, err)
	}
	// A durable subscriber needs a fan-out ring; a lossy tap does not.
	_, err := Subscribe(qpath, SubscribeOptions{})
	wantError(t, err, ErrMode, "subscribe", qpath)
	tap := subscribe(t, qpath, SubscribeOptions{Lossy: true})
	mustWrite(t, q, 1)
	wantNext(t, tap, 1)
	// The queue's consumer is unaffected by the tap.
	if msg, err := q.ReadMsg(); err != nil || string(msg) != string(subMsg(1, 40)) {
		t.Fatalf("queue consumer: %q, %v", msg, err)
	}
	if list, err := q.Subscribers(); err != nil || len(list) != 1 || !list[0].Lossy {
		t.Fatalf("Subscribers of the queue ring = %+v, %v; want the tap", list, err)
	}

	f, fpath := newFanOutRing(t, 4096)
	if fan, err := f.IsFanOut(); !fan || err != nil {
		t.Fatalf("IsFanOut of a fan-out ring = %v, %v", fan, err)
	}
	mustWrite(t, f, 2) // no subscriber: nobody holds it
	if _, err := f.ReadMsg(); err != ErrMode {
		t.Fatalf("ReadMsg on a fan-out ring's plain handle: %v; want ErrMode", err)
	}
	if list, err := f.Subscribers(); err != nil || len(list) != 0 {
		t.Fatalf("Subscribers = %+v, %v; want none", list, err)
	}
	// The mode is part of what a ring is: the other mode is another ring.
	_, err = CreateRingBuffer(fpath, 4096, CreateOptions{})
	wantError(t, err, ErrExists, "create", fpath)
	_, err = CreateRingBuffer(qpath, 4096, CreateOptions{FanOut: true})
	wantError(t, err, ErrExists, "create", qpath)
	again, err := CreateRingBuffer(fpath, 4096, CreateOptions{FanOut: true})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if fan, _ := again.IsFanOut(); !fan {
		t.Fatal("reopened fan-out ring is not fan-out")
	}
	// A subscriber handle knows its ring's mode too.
	sub := subscribe(t, fpath, SubscribeOptions{})
	if fan, err := sub.IsFanOut(); !fan || err != nil {
		t.Fatalf("IsFanOut of a subscriber = %v, %v", fan, err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.IsFanOut(); err != ErrClosed {
		t.Fatalf("IsFanOut after Close: %v; want ErrClosed", err)
	}
	if _, err := sub.ReadMsg(); err != ErrClosed {
		t.Fatalf("ReadMsg after Close: %v; want ErrClosed", err)
	}
	if _, err := sub.Info(); err != ErrClosed {
		t.Fatalf("Info after Close: %v; want ErrClosed", err)
	}
	if _, err := sub.Subscribers(); err != ErrClosed {
		t.Fatalf("Subscribers after Close: %v; want ErrClosed", err)
	}
}

func TestSubscribeBadOptions(t *testing.T) {
	f, path := newFanOutRing(t, 4096)
	for _, opts := range []SubscribeOptions{
		{Lossy: true, EvictAfter: time.Microsecond},
		{EvictAfter: -time.Second},
		{Name: strings.Repeat("x", MaxSubscriberName+1)},
		{Name: "nul\x00name"},
	} {
		s, err := Subscribe(path, opts)
		if s != nil {
			t.Fatalf("Subscribe(%+v) returned a subscriber", opts)
		}
		wantError(t, err, ErrInvalidArgument, "subscribe", path)
	}
	_, err := Subscribe(path, SubscribeOptions{Name: strings.Repeat("x", 32)})
	if want := `ringbuffer: subscribe ` + path + `: invalid subscriber name "` +
		strings.Repeat("x", 32) + `" (want 1..31 bytes, no NUL)`; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	longest := strings.Repeat("y", MaxSubscriberName)
	s := subscribe(t, path, SubscribeOptions{Name: longest})
	in := info(t, s)
	if in.Name != longest || in.State != SubscriberActive || in.PID != os.Getpid() || !in.Alive ||
		in.Lossy || in.Evict || in.EvictAfter != 0 || in.Index != 0 {
		t.Fatalf("Info = %+v", in)
	}
	if in.State.String() != "active" || SubscriberState(9).String() != "SubscriberState(9)" {
		t.Fatalf("state names %q, %q", in.State, SubscriberState(9))
	}
	// A plain handle is not a subscriber; its listing shows the one there is.
	if list, err := f.Subscribers(); err != nil || len(list) != 1 || list[0] != in {
		t.Fatalf("Subscribers = %+v, %v; want [%+v]", list, err, in)
	}
	ev := subscribe(t, path, SubscribeOptions{Name: "ev", EvictAfter: 3 * time.Second})
	if in := info(t, ev); !in.Evict || in.EvictAfter != 3*time.Second || in.Index != 1 {
		t.Fatalf("evictable Info = %+v", in)
	}
	// Lossy and evictable subscribers cannot hold (they validate copies).
	if err := ev.Hold(true); err != ErrInvalidArgument {
		t.Fatalf("Hold on an evictable subscriber: %v; want ErrInvalidArgument", err)
	}
	for _, name := range []string{"", "nul\x00", strings.Repeat("z", 32)} {
		wantError(t, Unsubscribe(path, name), ErrInvalidArgument, "unsubscribe", path)
	}
}

// Each durable subscriber sees every message in order; producers are held
// back by the slowest one, and only by it.
func TestDurableFanOutToTwo(t *testing.T) {
	f, path := newFanOutRing(t, 4096)
	fast := subscribe(t, path, SubscribeOptions{})
	slow := subscribe(t, path, SubscribeOptions{})
	var written uint64
	for writeSeq(f, written) == nil {
		written++
	}
	if written != 64 {
		t.Fatalf("%d messages fit a 4 KiB ring; want 64", written)
	}
	// The fast one reads everything, in batches; the ring stays full.
	var seen uint64
	for seen < written {
		msgs, err := fast.ReadBatch(10)
		if err != nil {
			t.Fatalf("ReadBatch after %d: %v", seen, err)
		}
		for _, m := range msgs {
			if string(m) != string(subMsg(seen, 40)) {
				t.Fatalf("fast subscriber: message %d differs", seen)
			}
			seen++
		}
	}
	if _, err := fast.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("fast subscriber at the end: %v; want ErrBufferEmpty", err)
	}
	if err := writeSeq(f, written); err != ErrBufferFull {
		t.Fatalf("write while the slow one has read nothing: %v; want ErrBufferFull", err)
	}
	// The slow one reads 10 (into a buffer): exactly 10 more fit.
	buf := make([]byte, 64)
	for i := uint64(0); i < 10; i++ {
		n, err := slow.ReadMsgInto(buf)
		if err != nil || string(buf[:n]) != string(subMsg(i, 40)) {
			t.Fatalf("slow subscriber message %d: %d bytes, %v", i, n, err)
		}
	}
	for i := 0; i < 10; i++ {
		mustWrite(t, f, written)
		written++
	}
	if err := writeSeq(f, written); err != ErrBufferFull {
		t.Fatalf("write after 10 more: %v; want ErrBufferFull", err)
	}
	infos, err := f.Subscribers()
	if err != nil || len(infos) != 2 {
		t.Fatalf("Subscribers = %+v, %v", infos, err)
	}
	if infos[0].MessagesRead != 64 || infos[0].LagMessages != 10 || infos[0].LagBytes != 640 ||
		infos[1].MessagesRead != 10 || infos[1].LagMessages != 64 || infos[1].LagBytes != 64*64 ||
		infos[1].BytesRead != 400 || infos[1].Position != 640 {
		t.Fatalf("Subscribers = %+v", infos)
	}
	for i := uint64(64); i < written; i++ {
		wantNext(t, fast, i)
	}
	for i := uint64(10); i < written; i++ {
		wantNext(t, slow, i)
	}
	st, err := f.Stats()
	if err != nil || st.ProducerPosition != 74*64 || st.ConsumerPosition != st.ProducerPosition {
		t.Fatalf("Stats = %+v, %v; want both positions at %d", st, err, 74*64)
	}
	// Closing an unnamed subscriber frees its entry and its hold at once.
	if err := slow.Close(); err != nil {
		t.Fatal(err)
	}
	if list, err := f.Subscribers(); err != nil || len(list) != 1 {
		t.Fatalf("Subscribers after Close = %+v, %v", list, err)
	}
}

func TestSubscriberFromOldest(t *testing.T) {
	f, path := newFanOutRing(t, 4096)
	subscribe(t, path, SubscribeOptions{}) // holds the backlog
	for i := uint64(0); i < 5; i++ {
		mustWrite(t, f, i)
	}
	live := subscribe(t, path, SubscribeOptions{})
	old := subscribe(t, path, SubscribeOptions{Name: "old", FromOldest: true})
	mustWrite(t, f, 5)
	wantNext(t, live, 5)
	if _, err := live.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("live-end subscriber: %v; want ErrBufferEmpty", err)
	}
	for i := uint64(0); i <= 5; i++ {
		wantNext(t, old, i)
	}
	if in := info(t, old); in.MessagesRead != 6 || in.Position != 6*64 {
		t.Fatalf("Info = %+v", in)
	}
}

// A named subscriber that closes keeps its place and its messages;
// rejoining resumes right after the last message it released.
func TestNamedSubscriberResumesAfterClose(t *testing.T) {
	f, path := newFanOutRing(t, 4096)
	rec := subscribe(t, path, SubscribeOptions{Name: "recorder"})
	_, err := Subscribe(path, SubscribeOptions{Name: "recorder"})
	wantError(t, err, ErrNameBusy, "subscribe", path)
	wantError(t, Unsubscribe(path, "recorder"), ErrNameBusy, "unsubscribe", path)
	for i := uint64(0); i < 20; i++ {
		mustWrite(t, f, i)
	}
	for i := uint64(0); i < 7; i++ {
		wantNext(t, rec, i)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(20); i < 30; i++ {
		mustWrite(t, f, i)
	}
	list, err := f.Subscribers()
	if err != nil || len(list) != 1 {
		t.Fatalf("Subscribers = %+v, %v", list, err)
	}
	if in := list[0]; in.Name != "recorder" || in.State != SubscriberDetached || in.PID != 0 ||
		in.LagMessages != 23 || in.LagBytes != 23*64 || in.MessagesRead != 7 || in.Position != 7*64 {
		t.Fatalf("detached entry = %+v", in)
	}
	rec = subscribe(t, path, SubscribeOptions{Name: "recorder"})
	for i := uint64(7); i < 12; i++ {
		wantNext(t, rec, i)
	}
	// Held messages are not released: after Close the next join resumes
	// right after the last one released through ReleaseThrough.
	if err := rec.Hold(true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	lengths := make([]int, 3)
	positions := make([]uint64, 3)
	n, err := rec.ReadBatchAt(buf, lengths, positions)
	if err != nil || n != 3 || positions[0] != 12*64 || positions[2] != 14*64 ||
		string(buf[:40]) != string(subMsg(12, 40)) {
		t.Fatalf("ReadBatchAt = %d, %v, positions %v", n, err, positions)
	}
	if err := rec.ReleaseThrough(positions[0]); err != nil {
		t.Fatal(err)
	}
	if err := rec.ReleaseThrough(positions[0]); err != ErrStale {
		t.Fatalf("ReleaseThrough twice: %v; want ErrStale", err)
	}
	rec.Close()
	rec = subscribe(t, path, SubscribeOptions{Name: "recorder"})
	for i := uint64(13); i < 30; i++ {
		wantNext(t, rec, i)
	}
	if _, err := rec.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("ReadMsg at the end: %v; want ErrBufferEmpty", err)
	}
	rec.Close()
	// Unsubscribe removes it for good.
	err = Unsubscribe(path, "nobody")
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != "ringbuffer: unsubscribe "+path+": no such file or directory" {
		t.Fatalf("Unsubscribe of an unknown name: %v; want fs.ErrNotExist", err)
	}
	if err := Unsubscribe(path, "recorder"); err != nil {
		t.Fatal(err)
	}
	if list, err := f.Subscribers(); err != nil || len(list) != 0 {
		t.Fatalf("Subscribers after Unsubscribe = %+v, %v", list, err)
	}
}

// Until Unsubscribe, a detached named subscriber holds producers back.
func TestUnsubscribeReleasesSpace(t *testing.T) {
	f, path := newFanOutRing(t, 4096)
	subscribe(t, path, SubscribeOptions{Name: "gone"}).Close()
	var written uint64
	for writeSeq(f, written) == nil {
		written++
	}
	if written != 64 {
		t.Fatalf("%d messages fit; want 64", written)
	}
	live := subscribe(t, path, SubscribeOptions{Name: "live"})
	if err := Unsubscribe(path, "gone"); err != nil {
		t.Fatal(err)
	}
	// Only "live" gates now, and it joined at the live end.
	mustWrite(t, f, written)
	wantNext(t, live, written)
}

// A lossy tap never holds producers back; when lapped it skips to the
// oldest lap boundary and counts exactly the bytes it lost.
func TestLossyTapLappedCountsBytes(t *testing.T) {
	f, path := newFanOutRing(t, 1024)
	tap := subscribe(t, path, SubscribeOptions{Name: "tap", Lossy: true})
	durable := subscribe(t, path, SubscribeOptions{})
	// 4.5 laps of 64-byte records (16 per lap), read by the durable one.
	for i := uint64(0); i < 72; i++ {
		mustWrite(t, f, i)
		wantNext(t, durable, i)
	}
	// Producer position 72 * 64 = 4608; the oldest lap boundary is 4096,
	// where message 64 starts: 4096 bytes were lost, silently.
	wantNext(t, tap, 64)
	in := info(t, tap)
	if in.LostBytes != 4096 || in.LostEvents != 1 || !in.Lossy || in.Name != "tap" {
		t.Fatalf("Info after the lap = %+v", in)
	}
	for i := uint64(65); i < 72; i++ {
		wantNext(t, tap, i)
	}
	if _, err := tap.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("tap at the end: %v; want ErrBufferEmpty", err)
	}
	in = info(t, tap)
	if in.MessagesRead != 8 || in.BytesRead != 8*40 {
		t.Fatalf("Info at the end = %+v", in)
	}
	// delivered + lost = produced since it joined, in ring bytes.
	if in.BytesRead/40*64+in.LostBytes != 72*64 {
		t.Fatalf("delivered %d + lost %d ring bytes != %d", in.BytesRead/40*64, in.LostBytes, 72*64)
	}
	if err := tap.Hold(true); err != ErrInvalidArgument {
		t.Fatalf("Hold on a lossy tap: %v; want ErrInvalidArgument", err)
	}
}

// A stopped evictable subscriber holds producers back until its timeout,
// then not; its next read returns ErrLapped once, then messages again,
// intact and in order.
func TestEvictedSubscriberGetsErrLappedOnce(t *testing.T) {
	f, path := newFanOutRing(t, 1024)
	slow := subscribe(t, path, SubscribeOptions{Name: "slow", EvictAfter: 50 * time.Millisecond})
	fast := subscribe(t, path, SubscribeOptions{})
	var written uint64
	for writeSeq(f, written) == nil {
		written++
	}
	if written != 16 {
		t.Fatalf("%d messages fit a 1 KiB ring; want 16", written)
	}
	for i := uint64(0); i < written; i++ {
		wantNext(t, fast, i)
	}
	// Held back, then (after the timeout, judged by producers short of
	// space) free again. The bound only stops a broken build from hanging.
	full := 0
	for {
		err := writeSeq(f, written)
		if err == nil {
			break
		}
		if err != ErrBufferFull {
			t.Fatalf("write while held back: %v", err)
		}
		full++
		if full > 20000 {
			t.Fatal("never evicted")
		}
		time.Sleep(time.Millisecond)
	}
	if full == 0 {
		t.Fatal("the evictable subscriber never held producers back")
	}
	wantNext(t, fast, written)
	written++
	for lap := 0; lap < 40; lap++ {
		mustWrite(t, f, written)
		wantNext(t, fast, written)
		written++
	}
	if in := info(t, slow); in.State != SubscriberEvicted || in.Evictions != 1 || in.State.String() != "evicted" {
		t.Fatalf("Info of the evicted subscriber = %+v", in)
	}
	// Told once, then messages again.
	if _, err := slow.ReadMsg(); err != ErrLapped {
		t.Fatalf("first read after eviction: %v; want ErrLapped", err)
	}
	first, err := next(t, slow)
	if err != nil || first == 0 {
		t.Fatalf("read after ErrLapped: %d, %v", first, err)
	}
	for i := first + 1; i < written; i++ {
		wantNext(t, slow, i)
	}
	in := info(t, slow)
	if in.State != SubscriberActive || in.LostBytes != first*64 || in.LostEvents != 1 {
		t.Fatalf("Info after rejoining = %+v; want LostBytes %d", in, first*64)
	}
	// Gating again: it holds producers back like any durable subscriber.
	fitted := 0
	for writeSeq(f, written) == nil {
		wantNext(t, fast, written)
		written++
		fitted++
	}
	if fitted != 16 {
		t.Fatalf("%d messages fitted after it rejoined; want 16", fitted)
	}
}

func TestSubscriberTableFull(t *testing.T) {
	_, path := newTestRing(t, 256)
	for i := 0; i < MaxSubscribers; i++ {
		subscribe(t, path, SubscribeOptions{Lossy: true})
	}
	s, err := Subscribe(path, SubscribeOptions{Lossy: true})
	if s != nil {
		t.Fatal("a subscriber beyond the table")
	}
	wantError(t, err, ErrNoSubscriberSlot, "subscribe", path)
}

// A subscriber blocked in a context read returns the context's error when
// it is cancelled, and a write from another handle wakes it.
func TestSubscriberContextReads(t *testing.T) {
	f, path := newFanOutRing(t, 4096)
	s := subscribe(t, path, SubscribeOptions{})
	buf := make([]byte, 64)
	lengths := make([]int, 4)
	positions := make([]uint64, 4)
	reads := map[string]func(context.Context) error{
		"ReadMsgContext": func(ctx context.Context) error {
			_, err := s.ReadMsgContext(ctx)
			return err
		},
		"ReadMsgIntoContext": func(ctx context.Context) error {
			_, err := s.ReadMsgIntoContext(ctx, buf)
			return err
		},
		"ReadBatchContext": func(ctx context.Context) error {
			_, err := s.ReadBatchContext(ctx, buf, lengths)
			return err
		},
		"ReadBatchAtContext": func(ctx context.Context) error {
			_, err := s.ReadBatchAtContext(ctx, buf, lengths, positions)
			return err
		},
	}
	for name, read := range reads {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- read(ctx) }()
		time.Sleep(10 * time.Millisecond) // let it block (not needed for correctness)
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("%s cancelled: %v; want context.Canceled", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.ReadMsgContext(ctx); err != context.DeadlineExceeded {
		t.Fatalf("ReadMsgContext past its deadline: %v; want context.DeadlineExceeded", err)
	}
	// A write wakes a blocked reader with the message.
	got := make(chan []byte, 1)
	go func() {
		msg, err := s.ReadMsgContext(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- msg
	}()
	time.Sleep(10 * time.Millisecond)
	mustWrite(t, f, 42)
	if msg := <-got; string(msg) != string(subMsg(42, 40)) {
		t.Fatalf("woken reader got %q", msg)
	}
	// Close from another goroutine ends a blocked read with ErrClosed.
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadMsgContext(context.Background())
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	if err := <-done; err != ErrClosed {
		t.Fatalf("read ended by Close: %v; want ErrClosed", err)
	}
}

// The test binary's child role for TestNamedSubscriberResumesAfterKill:
// joins NAME, reads 5 messages, then holds and reads 3 more and releases
// only the first of them, reports, and waits to be killed.
const killedSubscriberEnv = "MRB_GO_TEST_KILLED_SUBSCRIBER_RING"

func runKilledSubscriberProcess(path string) int {
	s, err := Subscribe(path, SubscribeOptions{Name: "worker"})
	if err != nil {
		os.Stdout.WriteString("subscribe: " + err.Error() + "\n")
		return 1
	}
	for i := uint64(0); i < 5; i++ {
		msg, err := s.ReadMsg()
		if err != nil || string(msg) != string(subMsg(i, 40)) {
			os.Stdout.WriteString("read failed\n")
			return 1
		}
	}
	buf := make([]byte, 4096)
	lengths := make([]int, 3)
	positions := make([]uint64, 3)
	if err := s.Hold(true); err != nil {
		os.Stdout.WriteString("hold: " + err.Error() + "\n")
		return 1
	}
	if n, err := s.ReadBatchAt(buf, lengths, positions); n != 3 || err != nil {
		os.Stdout.WriteString("batch failed\n")
		return 1
	}
	if err := s.ReleaseThrough(positions[0]); err != nil {
		os.Stdout.WriteString("release: " + err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString("ready\n")
	select {} // killed here, handle open
}

// A named subscriber whose process is killed (SIGKILL, handle open) is
// resumed by the next process to join with its name, right after the last
// message it released: no gap, no repeat.
func TestNamedSubscriberResumesAfterKill(t *testing.T) {
	f, path := newFanOutRing(t, 4096)
	// Made here, so that it starts at the first message.
	subscribe(t, path, SubscribeOptions{Name: "worker"}).Close()
	for i := uint64(0); i < 20; i++ {
		mustWrite(t, f, i)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killedSubscriberEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("subscriber process said %q, %v", line, err)
	}
	// While it lives, its name is busy.
	_, err = Subscribe(path, SubscribeOptions{Name: "worker"})
	wantError(t, err, ErrNameBusy, "subscribe", path)
	pid := cmd.Process.Pid
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	list, err := f.Subscribers()
	if err != nil || len(list) != 1 || list[0].Name != "worker" || list[0].PID != pid || list[0].Alive ||
		list[0].Position != 6*64 {
		t.Fatalf("Subscribers after the kill = %+v, %v; want worker, pid %d, dead, at %d", list, err, pid, 6*64)
	}
	s := subscribe(t, path, SubscribeOptions{Name: "worker"})
	for i := uint64(6); i < 20; i++ {
		wantNext(t, s, i)
	}
	if in := info(t, s); in.PID != os.Getpid() || !in.Alive || in.State != SubscriberActive {
		t.Fatalf("Info after resuming = %+v", in)
	}
}

// Two producer processes (this test binary, re-executed) write into a small
// fan-out ring read by two durable subscribers in this process: each
// subscriber receives every message once, intact and in per-producer order,
// with producers blocking on the slower subscriber across processes.
func TestFanOutAcrossProcesses(t *testing.T) {
	const producers = 2
	perProducer := scaled(20000)
	_, path := newFanOutRing(t, 16<<10)
	subs := []*Subscriber{subscribe(t, path, SubscribeOptions{}), subscribe(t, path, SubscribeOptions{Name: "second"})}
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
				cancel()
			}
			exited <- err
		}(w)
	}
	results := make(chan error, len(subs))
	for i, s := range subs {
		go func(i int, s *Subscriber) {
			checker := newSequenceChecker(crossProcessMaxBody)
			for received := 0; received < producers*perProducer; received++ {
				msg, err := s.ReadMsgContext(ctx)
				if err != nil {
					results <- fmt.Errorf("subscriber %d after %d messages: %v", i, received, err)
					return
				}
				if err := checker.check(msg); err != nil {
					results <- fmt.Errorf("subscriber %d, message %d: %v", i, received, err)
					return
				}
			}
			for w := uint32(1); w <= producers; w++ {
				if got := checker.next[w]; got != uint64(perProducer) {
					results <- fmt.Errorf("subscriber %d: producer %d: %d messages", i, w, got)
					return
				}
			}
			if _, err := s.ReadMsg(); err != ErrBufferEmpty {
				results <- fmt.Errorf("subscriber %d after all: %v; want ErrBufferEmpty", i, err)
				return
			}
			results <- nil
		}(i, s)
	}
	for range subs {
		if err := <-results; err != nil {
			cancel()
			t.Error(err)
		}
	}
	for i := 0; i < producers; i++ {
		if err := <-exited; err != nil {
			t.Error(err)
		}
	}
	for i, s := range subs {
		if in := info(t, s); in.MessagesRead != uint64(producers*perProducer) || in.LagBytes != 0 {
			t.Fatalf("subscriber %d: Info = %+v", i, in)
		}
	}
}
