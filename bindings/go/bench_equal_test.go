package ringbuffer

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkEqualWork: a producer goroutine and a consumer goroutine doing
// the same work on both sides of the comparison (issue 16). The producer
// fills every message (each 8-byte word is the message's sequence number
// plus the word's index); the consumer gets a []byte of its own per message
// and reads every byte (sums the words and checks the sum and the sequence
// number). The channel row hands over a new slice per message (the
// producer allocates it and fills it in place); the ring rows fill one
// reused buffer and write it, and the consumer gets a new slice from
// ReadMsg or ReadMsgContext. Each ring row reports vs-chan: the channel
// row's ns per message in the same round divided by its own (> 1: faster).
//
//	go test -run '^$' -bench EqualWork -benchtime 100000x -count 5
func BenchmarkEqualWork(b *testing.B) {
	for _, size := range benchSizes {
		var chanNs float64
		b.Run(fmt.Sprintf("%dB/Channel", size), func(b *testing.B) {
			ch := make(chan []byte, benchChanDepth)
			b.SetBytes(int64(size))
			go func() {
				for i := 0; i < b.N; i++ {
					m := make([]byte, size)
					fillMessage(m, uint64(i))
					ch <- m
				}
			}()
			for i := 0; i < b.N; i++ {
				if err := checkMessage(<-ch, uint64(i), size); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			chanNs = baseline(b)
		})
		for _, mode := range []string{"Poll", "Context"} {
			b.Run(fmt.Sprintf("%dB/ReadMsg/%s", size, mode), func(b *testing.B) {
				r := newBenchRing(b)
				ctx := context.Background()
				b.SetBytes(int64(size))
				done := make(chan struct{})
				full, empty := 0, 0
				go func() {
					defer close(done)
					buf := make([]byte, size)
					for i := 0; i < b.N; i++ {
						fillMessage(buf, uint64(i))
						if mode == "Context" {
							if err := r.WriteMsgContext(ctx, buf); err != nil {
								panic(err)
							}
							continue
						}
						for {
							_, err := r.WriteMsg(buf)
							if err == nil {
								break
							}
							if err != ErrBufferFull {
								panic(err)
							}
							full++
							runtime.Gosched()
						}
					}
				}()
				for i := 0; i < b.N; {
					var m []byte
					var err error
					if mode == "Context" {
						m, err = r.ReadMsgContext(ctx)
					} else {
						m, err = r.ReadMsg()
					}
					if err == ErrBufferEmpty {
						empty++
						runtime.Gosched()
						continue
					}
					if err != nil {
						b.Fatal(err)
					}
					if err := checkMessage(m, uint64(i), size); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.StopTimer()
				<-done
				if ns := nsPerMsg(b); chanNs > 0 && ns > 0 {
					b.ReportMetric(chanNs/ns, "vs-chan")
				}
				// How often a side found the ring empty / full, per
				// message. Blocking, a refused write is followed by an
				// arm and maybe a park: the core's FullCount counts them
				// (a ReadMsgContext finding the ring empty is not
				// counted; it parks at most as often as it reads).
				if mode == "Context" {
					if st, err := r.Stats(); err == nil {
						full = int(st.FullCount)
					}
				}
				b.ReportMetric(float64(full)/float64(b.N), "full/msg")
				if mode == "Poll" {
					b.ReportMetric(float64(empty)/float64(b.N), "empty/msg")
				}
			})
		}
	}
}

// fillMessage writes every byte of m: word j (8 bytes) is seq+j; a tail
// shorter than a word holds the low bytes of seq+len(m)/8.
func fillMessage(m []byte, seq uint64) {
	j := 0
	for ; j+8 <= len(m); j += 8 {
		binary.LittleEndian.PutUint64(m[j:], seq+uint64(j/8))
	}
	for k := j; k < len(m); k++ {
		m[k] = byte((seq + uint64(j/8)) >> (8 * (k - j)))
	}
}

// checkMessage reads every byte of m and checks that it is fillMessage's
// message seq of size bytes.
func checkMessage(m []byte, seq uint64, size int) error {
	if len(m) != size {
		return fmt.Errorf("message %d: %d bytes, want %d", seq, len(m), size)
	}
	var sum uint64
	j := 0
	for ; j+8 <= len(m); j += 8 {
		sum += binary.LittleEndian.Uint64(m[j:])
	}
	words := uint64(j / 8)
	if want := words*seq + words*(words-1)/2; sum != want {
		return fmt.Errorf("message %d: word sum %d, want %d", seq, sum, want)
	}
	for k := j; k < len(m); k++ {
		if m[k] != byte((seq+words)>>(8*(k-j))) {
			return fmt.Errorf("message %d: byte %d is %d", seq, k, m[k])
		}
	}
	return nil
}
