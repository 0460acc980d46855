package ringbuffer

import (
	"os"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	before := time.Now().Add(-time.Second)
	r, path := newTestRing(t, 256)
	s, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.FormatVersion != 2 || s.Capacity != 256 || s.MaxMessageSize != 128 ||
		s.CreatorPID != os.Getpid() || s.Created.Before(before) || s.Created.After(time.Now()) ||
		s.ConsumerPID != 0 || s.ConsumerAlive || s.MessagesWritten != 0 || s.UsedBytes != 0 {
		t.Fatalf("Stats() of a new ring = %+v", s)
	}

	written := 0
	for {
		if _, err := r.WriteMsg([]byte("four")); err == ErrBufferFull {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		written++
	}
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	s, err = r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Each 4-byte message takes a 16-byte header, rounded up to 32 bytes.
	if s.MessagesWritten != uint64(written) || s.BytesWritten != uint64(4*written) ||
		s.MessagesRead != 1 || s.BytesRead != 4 || s.FullCount != 1 ||
		s.ProducerPosition != uint64(32*written) || s.ConsumerPosition != 32 ||
		s.UsedBytes != uint64(32*(written-1)) ||
		s.ConsumerPID != os.Getpid() || !s.ConsumerAlive || s.Producers != 1 || s.ProducersAlive != 1 {
		t.Fatalf("Stats() after %d writes, 1 read = %+v", written, s)
	}

	// Any handle sees the same shared counters.
	other, err := OpenRingBuffer(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if s2, err := other.Stats(); err != nil || s2.MessagesWritten != s.MessagesWritten || s2.ConsumerPosition != s.ConsumerPosition {
		t.Fatalf("other.Stats() = %+v, %v", s2, err)
	}
}

// A ring's only producer holds the sole-producer lease from its first write:
// Stats names it (this process, slot 0); closing it gives the lease back.
func TestStatsSoleProducer(t *testing.T) {
	r, path := newTestRing(t, 4096)
	s, err := r.Stats()
	if err != nil || s.SoleProducerPID != 0 || s.SoleProducerSlot != -1 {
		t.Fatalf("Stats() of a new ring = %+v, %v", s, err)
	}
	w, err := OpenRingBuffer(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteMsg([]byte("one")); err != nil {
		t.Fatal(err)
	}
	s, err = r.Stats()
	if err != nil || s.SoleProducerPID != os.Getpid() || s.SoleProducerSlot != 0 {
		t.Fatalf("Stats() after a write = %+v, %v", s, err)
	}
	w.Close()
	s, err = r.Stats()
	if err != nil || s.SoleProducerPID != 0 || s.SoleProducerSlot != -1 {
		t.Fatalf("Stats() after the writer closed = %+v, %v", s, err)
	}
}
