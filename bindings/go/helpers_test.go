package ringbuffer

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"testing"
)

// newTestRing creates a fresh ring of size bytes in a per-test directory and
// closes it when the test ends.
func newTestRing(t testing.TB, size int) (*RingBuffer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring.mrb")
	r, err := NewRingBuffer(path, size, true)
	if err != nil {
		t.Fatalf("NewRingBuffer(%q, %d, true): %v", path, size, err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

// A test message identifies its writer and sequence number, has a length
// that varies with both, and ends with a CRC-32 of everything before it:
//
//	writer u32 | seq u64 | body (bodyLen(writer, seq, maxBody) bytes) | crc u32
const testMessageOverhead = 4 + 8 + 4

func bodyLen(writer uint32, seq uint64, maxBody int) int {
	return int((seq*7919 + uint64(writer)*104729) % uint64(maxBody+1))
}

func bodyByte(writer uint32, seq uint64, i int) byte {
	return byte(uint64(writer)*31 + seq*17 + uint64(i)*7)
}

func appendTestMessage(dst []byte, writer uint32, seq uint64, maxBody int) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, writer)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	n := bodyLen(writer, seq, maxBody)
	for i := 0; i < n; i++ {
		dst = append(dst, bodyByte(writer, seq, i))
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

// sequenceChecker verifies test messages: intact, and from each writer in
// order 0, 1, 2, ... without gaps or repeats.
type sequenceChecker struct {
	maxBody int
	next    map[uint32]uint64
}

func newSequenceChecker(maxBody int) *sequenceChecker {
	return &sequenceChecker{maxBody: maxBody, next: map[uint32]uint64{}}
}

func (c *sequenceChecker) check(msg []byte) error {
	if len(msg) < testMessageOverhead {
		return fmt.Errorf("message of %d bytes is shorter than its header", len(msg))
	}
	body := len(msg) - 4
	if got, want := binary.LittleEndian.Uint32(msg[body:]), crc32.ChecksumIEEE(msg[:body]); got != want {
		return fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	writer := binary.LittleEndian.Uint32(msg)
	seq := binary.LittleEndian.Uint64(msg[4:])
	if want := c.next[writer]; seq != want {
		return fmt.Errorf("writer %d: sequence %d, want %d", writer, seq, want)
	}
	want := appendTestMessage(nil, writer, seq, c.maxBody)
	if string(msg) != string(want) {
		return fmt.Errorf("writer %d seq %d: content differs", writer, seq)
	}
	c.next[writer] = seq + 1
	return nil
}

// scaled returns n, or n/10 under -short (the Bazel run uses -race -short).
func scaled(n int) int {
	if testing.Short() {
		return n / 10
	}
	return n
}
