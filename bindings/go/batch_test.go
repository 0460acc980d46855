package ringbuffer

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	r, _ := newTestRing(t, 64<<10)
	var msgs [][]byte
	for i := 0; i < 300; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf("batch message %d %s", i, make([]byte, i%37))))
	}
	n, err := r.WriteBatch(msgs)
	if n != len(msgs) || err != nil {
		t.Fatalf("WriteBatch(%d) = %d, %v", len(msgs), n, err)
	}
	got, err := r.ReadBatch(100)
	if err != nil || len(got) != 100 {
		t.Fatalf("ReadBatch(100) = %d messages, %v", len(got), err)
	}
	// The returned slices do not overlap: appending to one leaves the next.
	got[0] = append(got[0], "clobber?"...)
	rest, err := r.ReadBatch(1000)
	if err != nil || len(rest) != 200 {
		t.Fatalf("ReadBatch(1000) = %d messages, %v", len(rest), err)
	}
	got = append(got, rest...)
	for i, m := range got {
		want := string(msgs[i])
		if i == 0 {
			want += "clobber?"
		}
		if string(m) != want {
			t.Fatalf("message %d = %q, want %q", i, m, want)
		}
	}
	if _, err := r.ReadBatch(10); err != ErrBufferEmpty {
		t.Fatalf("ReadBatch after all: %v", err)
	}
}

func TestWriteBatchStopsWhenFull(t *testing.T) {
	r, _ := newTestRing(t, 256)
	var msgs [][]byte
	for i := 0; i < 20; i++ {
		msgs = append(msgs, []byte{byte(i), 1, 2, 3})
	}
	n, err := r.WriteBatch(msgs)
	if err != ErrBufferFull || n == 0 || n >= len(msgs) {
		t.Fatalf("WriteBatch(20 into 256 bytes) = %d, %v; want 0 < n < 20, ErrBufferFull", n, err)
	}
	lengths := make([]int, 64)
	buf := make([]byte, 1024)
	got, err := r.ReadBatchInto(buf, lengths)
	if err != nil || got != n {
		t.Fatalf("ReadBatchInto = %d, %v; want %d", got, err, n)
	}
	for i := 0; i < got; i++ {
		if lengths[i] != 4 || string(buf[4*i:4*i+4]) != string(msgs[i]) {
			t.Fatalf("message %d = %v (length %d)", i, buf[4*i:4*i+4], lengths[i])
		}
	}
}

// A message larger than ReadBatch's initial buffer still comes through.
func TestReadBatchGrowsForLargeMessages(t *testing.T) {
	r, _ := newTestRing(t, 1<<20)
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 13)
	}
	if _, err := r.WriteBatch([][]byte{big, []byte("small")}); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadBatch(2)
	if err != nil || len(got) == 0 || string(got[0]) != string(big) {
		t.Fatalf("ReadBatch: %d messages, %v", len(got), err)
	}
	if len(got) == 1 {
		more, err := r.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, more)
	}
	if string(got[1]) != "small" {
		t.Fatalf("second message = %q", got[1])
	}
	// ReadMsg's own buffer grows the same way.
	if _, err := r.WriteMsg(big); err != nil {
		t.Fatal(err)
	}
	if msg, err := r.ReadMsg(); err != nil || string(msg) != string(big) {
		t.Fatalf("ReadMsg(big): %d bytes, %v", len(msg), err)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r, _ := newTestRing(t, 64<<10)
	msg := []byte("sixty-four bytes or so: 0123456789012345678901234567890123456789")
	dst := make([]byte, 128)
	batch := [][]byte{msg, msg, msg, msg}
	buf := make([]byte, 4096)
	lengths := make([]int, 16)
	r.WriteBatch(batch) // warm the batch pool
	r.ReadBatchInto(buf, lengths)
	for name, f := range map[string]func(){
		"WriteMsg+ReadMsgInto": func() {
			if _, err := r.WriteMsg(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadMsgInto(dst); err != nil {
				t.Fatal(err)
			}
		},
		"ReadMsgInto(empty)": func() {
			if _, err := r.ReadMsgInto(dst); err != ErrBufferEmpty {
				t.Fatal(err)
			}
		},
		"WriteBatch+ReadBatchInto": func() {
			if n, err := r.WriteBatch(batch); n != 4 || err != nil {
				t.Fatal(n, err)
			}
			if n, err := r.ReadBatchInto(buf, lengths); n != 4 || err != nil {
				t.Fatal(n, err)
			}
		},
	} {
		if allocs := testing.AllocsPerRun(1000, f); allocs != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, allocs)
		}
	}
}

// ReadMsg's only allocation for a small message is the message it
// returns, of exactly its length; a message of 1 KiB or more is read into a
// shared 64 KiB block, one allocation per block (16 messages of 4 KiB);
// ReadBatch's are the shared bytes and the slice of messages. (Each was
// written once: see cloneBytes and ReadMsg.)
func TestReadMsgAllocatesOnlyItsResult(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r, _ := newTestRing(t, 64<<10)
	msg := make([]byte, 4096)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	var got []byte
	for _, c := range []struct {
		size, runs int
		allocs     float64
	}{
		{100, 100, 1},
		{blockMin - 1, 100, 1},
		// 4 KiB messages: one 64 KiB block per 16. testing.AllocsPerRun
		// rounds down, so 160 runs allocate 10 blocks (or 11, the first
		// being still the small block): 0 per run.
		{4096, 160, 0},
	} {
		if allocs := testing.AllocsPerRun(c.runs, func() {
			if _, err := r.WriteMsg(msg[:c.size]); err != nil {
				t.Fatal(err)
			}
			var err error
			if got, err = r.ReadMsg(); err != nil {
				t.Fatal(err)
			}
		}); allocs != c.allocs {
			t.Errorf("WriteMsg+ReadMsg of %d bytes: %v allocations per run, want %v", c.size, allocs, c.allocs)
		}
		if !bytes.Equal(got, msg[:c.size]) || cap(got) != c.size {
			t.Errorf("ReadMsg: %d bytes (cap %d), want %d, equal %v", len(got), cap(got), c.size, bytes.Equal(got, msg[:c.size]))
		}
	}
	var mallocs runtime.MemStats
	runtime.ReadMemStats(&mallocs)
	before := mallocs.Mallocs
	for i := 0; i < 64; i++ {
		r.WriteMsg(msg)
		r.ReadMsg()
	}
	runtime.ReadMemStats(&mallocs)
	if n := mallocs.Mallocs - before; n < 4 || n > 5 {
		t.Errorf("64 messages of 4 KiB: %d allocations, want 4 blocks (5 if one began before)", n)
	}
	batch := [][]byte{msg[:100], msg[:200], msg[:300]}
	var msgs [][]byte
	if allocs := testing.AllocsPerRun(100, func() {
		if n, err := r.WriteBatch(batch); n != 3 || err != nil {
			t.Fatal(n, err)
		}
		var err error
		if msgs, err = r.ReadBatch(3); len(msgs) != 3 || err != nil {
			t.Fatal(len(msgs), err)
		}
	}); allocs != 2 {
		t.Errorf("WriteBatch+ReadBatch: %v allocations per run, want 2", allocs)
	}
	for i, m := range msgs {
		if !bytes.Equal(m, batch[i]) || cap(m) != len(m) {
			t.Errorf("ReadBatch message %d: %d bytes (cap %d)", i, len(m), cap(m))
		}
	}
}
