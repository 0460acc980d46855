package ringbuffer

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// blockTestMessage is message seq of size bytes: its sequence number, then
// bytes that depend on both.
func blockTestMessage(seq uint64, size int) []byte {
	m := make([]byte, size)
	binary.LittleEndian.PutUint64(m, seq)
	for i := 8; i < size; i++ {
		m[i] = byte(seq*131 + uint64(i)*7)
	}
	return m
}

// Messages handed out of ReadMsg's shared blocks stay exactly as read, in
// sequence, whatever is read after them: sizes below, at and above the
// 1 KiB threshold, messages that end a block exactly or do not fit its
// rest, and ones larger than a block. No two messages share a byte, each
// has its length as capacity, and appending to one leaves the next intact.
func TestReadMsgBlocksKeepEveryMessage(t *testing.T) {
	r, _ := newTestRing(t, 1<<20)
	sizes := []int{8, blockMin - 1, blockMin, blockMin + 1, 4096, 4096, 100, 30000,
		blockSize - 64, 64, 4096, blockSize, blockSize + 1, 2 * blockSize, 8, 4097, 1500}
	for i := 0; i < 40; i++ {
		sizes = append(sizes, 1000+i*997%5000)
	}
	var got [][]byte
	for seq, size := range sizes {
		if _, err := r.WriteMsg(blockTestMessage(uint64(seq), size)); err != nil {
			t.Fatalf("WriteMsg %d (%d bytes): %v", seq, size, err)
		}
		m, err := r.ReadMsg()
		if err != nil {
			t.Fatalf("ReadMsg %d: %v", seq, err)
		}
		got = append(got, m)
		// Interleave with the other read calls, which must not disturb
		// the blocks.
		if seq%5 == 4 {
			r.WriteMsg([]byte("into"))
			dst := make([]byte, 16)
			if n, err := r.ReadMsgInto(dst); n != 4 || err != nil || string(dst[:n]) != "into" {
				t.Fatalf("ReadMsgInto: %d %v %q", n, err, dst[:n])
			}
		}
	}
	// Appending to a message must reallocate, not write into its block.
	got[4] = append(got[4], "clobber"...)
	for seq, m := range got {
		want := blockTestMessage(uint64(seq), sizes[seq])
		if seq == 4 {
			want = append(want, "clobber"...)
		} else if cap(m) != len(m) {
			t.Errorf("message %d: cap %d, len %d", seq, cap(m), len(m))
		}
		if !bytes.Equal(m, want) {
			t.Errorf("message %d (%d bytes): got %d bytes, seq %d, not the bytes written",
				seq, sizes[seq], len(m), binary.LittleEndian.Uint64(m))
		}
	}
	// No two messages overlap.
	for i := range got {
		for j := i + 1; j < len(got); j++ {
			a, b := uintptr(unsafe.Pointer(&got[i][0])), uintptr(unsafe.Pointer(&got[j][0]))
			if a < b+uintptr(len(got[j])) && b < a+uintptr(len(got[i])) {
				t.Errorf("messages %d and %d overlap", i, j)
			}
		}
	}
}

// A ring drained by ReadMsg while a second goroutine writes: every message
// arrives once, in order, intact, and stays so while later ones are read
// (run under -race too).
func TestReadMsgBlocksProducerConsumer(t *testing.T) {
	r, _ := newTestRing(t, 64<<10)
	const count = 3000
	size := func(seq int) int { return 8 + seq*577%6000 }
	go func() {
		for seq := 0; seq < count; {
			if _, err := r.WriteMsg(blockTestMessage(uint64(seq), size(seq))); err == nil {
				seq++
			} else if err != ErrBufferFull {
				panic(err)
			}
		}
	}()
	kept := make([][]byte, 0, count)
	for seq := 0; seq < count; {
		m, err := r.ReadMsg()
		if err == ErrBufferEmpty {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, blockTestMessage(uint64(seq), size(seq))) {
			t.Fatalf("message %d: %d bytes, not as written", seq, len(m))
		}
		kept = append(kept, m)
		seq++
	}
	for seq, m := range kept {
		if !bytes.Equal(m, blockTestMessage(uint64(seq), size(seq))) {
			t.Fatalf("message %d changed after later reads", seq)
		}
	}
}

// A message larger than a block gets a block of its own, which the handle
// does not keep: once the caller drops the message, it can be collected.
func TestReadMsgLetsGoOfALargeMessage(t *testing.T) {
	r, _ := newTestRing(t, 1<<20)
	want := blockTestMessage(1, 2*blockSize+1)
	if _, err := r.WriteMsg(want); err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadMsg()
	if err != nil || !bytes.Equal(m, want) {
		t.Fatalf("ReadMsg: %d bytes, %v", len(m), err)
	}
	collected := make(chan struct{})
	runtime.SetFinalizer(&m[0], func(*byte) { close(collected) })
	m = nil
	for i := 0; i < 20; i++ {
		runtime.GC()
		select {
		case <-collected:
			// The handle still reads as before.
			r.WriteMsg(want[:3000])
			if m, err := r.ReadMsg(); err != nil || !bytes.Equal(m, want[:3000]) {
				t.Fatalf("ReadMsg after: %d bytes, %v", len(m), err)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("a message of 2 blocks was not collected after the caller dropped it: the handle keeps it")
}
