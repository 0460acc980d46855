// Command stage is the pipeline demo's middle hop (see ../pipeline.sh): it
// reads messages from ring A, checks each one's CRC, transforms the body
// (every byte XOR 0x5a), and forwards it with a new CRC to ring B. The end
// marker is checked against its own count and passed on unchanged.
//
//	stage RING_A RING_B SIZE
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

const transformKey = 0x5a

var endMarkerSeq = bytes.Repeat([]byte{0xff}, 8)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go stage:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 4 {
		return fmt.Errorf("usage: stage RING_A RING_B SIZE")
	}
	size, err := strconv.Atoi(os.Args[3])
	if err != nil {
		return err
	}
	in, err := ringbuffer.NewRingBuffer(os.Args[1], size, false)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := ringbuffer.NewRingBuffer(os.Args[2], size, false)
	if err != nil {
		return err
	}
	defer out.Close()

	var count, total uint64
	var start time.Time
	for done := false; !done; {
		batch, err := receiveBatch(in)
		if err != nil {
			return fmt.Errorf("ring A, message %d: %w", count, err)
		}
		if count == 0 {
			start = time.Now()
		}
		for i, msg := range batch {
			n := len(msg)
			if n < 12 || binary.LittleEndian.Uint32(msg[n-4:]) != crc32.ChecksumIEEE(msg[:n-4]) {
				return fmt.Errorf("ring A, message %d: bad CRC", count)
			}
			if bytes.Equal(msg[:8], endMarkerSeq) {
				if got := binary.LittleEndian.Uint64(msg[8:]); got != count {
					return fmt.Errorf("end marker says %d messages, %d arrived", got, count)
				}
				batch, done = batch[:i+1], true
				break
			}
			if seq := binary.LittleEndian.Uint64(msg); seq != count {
				return fmt.Errorf("ring A: message %d has sequence number %d", count, seq)
			}
			// The transform, in place: the slice is this stage's own copy.
			for j := 8; j < n-4; j++ {
				msg[j] ^= transformKey
			}
			binary.LittleEndian.PutUint32(msg[n-4:], crc32.ChecksumIEEE(msg[:n-4]))
			count++
			total += uint64(n)
		}
		if err := sendAll(out, batch); err != nil {
			return fmt.Errorf("ring B: %w", err)
		}
	}
	elapsed := time.Since(start).Seconds()
	fmt.Printf("Go stage  ring A -> ring B: %9d msgs %8.1f MB in %5.2f s: %10.0f msg/s %7.1f MB/s  (CRCs checked, bodies transformed)\n",
		count, float64(total)/1e6, elapsed, float64(count)/elapsed, float64(total)/1e6/elapsed)
	return nil
}

// receiveBatch waits for a message, then takes whatever else is ready with
// one call into C.
func receiveBatch(r *ringbuffer.RingBuffer) ([][]byte, error) {
	first, err := receive(r)
	if err != nil {
		return nil, err
	}
	more, err := r.ReadBatch(255)
	if err != nil && err != ringbuffer.ErrBufferEmpty {
		return nil, err
	}
	return append([][]byte{first}, more...), nil
}

// sendAll writes msgs in batches, waiting for room when ring B is full.
func sendAll(r *ringbuffer.RingBuffer, msgs [][]byte) error {
	for len(msgs) > 0 {
		n, err := r.WriteBatch(msgs)
		msgs = msgs[n:]
		switch {
		case err == ringbuffer.ErrBufferFull:
			if err := send(r, msgs[0]); err != nil {
				return err
			}
			msgs = msgs[1:]
		case err != nil:
			return err
		}
	}
	return nil
}

func receive(r *ringbuffer.RingBuffer) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.ReadMsgContext(ctx)
}

func send(r *ringbuffer.RingBuffer, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.WriteMsgContext(ctx, msg)
}
