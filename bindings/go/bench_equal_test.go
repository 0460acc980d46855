package ringbuffer

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuNow is the process's CPU time (user + system, every thread: both
// goroutines and the garbage collector's workers).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter adds up the process's CPU time over the timed parts of a
// benchmark and reports it per message as cpu-ns/msg: on a machine shared
// with other work it holds up better than wall time.
type cpuMeter struct {
	start, total time.Duration
}

func (m *cpuMeter) Start() { m.start = cpuNow() }
func (m *cpuMeter) Stop()  { m.total += cpuNow() - m.start }
func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.total.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// BenchmarkEqualWork: a producer goroutine and a consumer goroutine doing
// the same work on both sides of the comparison (issue 16). The producer
// fills every message (each 8-byte word is the message's sequence number
// plus the word's index); the consumer gets a []byte of its own per message
// and reads every byte (sums the words and checks the sum and the sequence
// number). The channel row hands over a new slice per message (the
// producer allocates it and fills it in place); the ring rows fill one
// reused buffer and write it, and the consumer gets a new slice from
// ReadMsg (polling) or ReadMsgContext. Each ring row reports vs-chan: the
// channel row's ns per message in the same round divided by its own (> 1:
// faster).
//
//	go test -run '^$' -bench EqualWork -benchtime 100000x -count 5
func BenchmarkEqualWork(b *testing.B) {
	for _, size := range benchSizes {
		var chanNs float64
		b.Run(fmt.Sprintf("%dB/Channel", size), func(b *testing.B) {
			ch := make(chan []byte, benchChanDepth)
			b.SetBytes(int64(size))
			var cpu cpuMeter
			cpu.Start()
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
			cpu.Stop()
			cpu.report(b)
			chanNs = baseline(b)
		})
		// Poll: both sides use the non-blocking calls and yield while the
		// ring is empty / full. PollRead: the consumer polls ReadMsg so,
		// the producer waits in WriteMsgContext (parked, as a channel's
		// sender waits), instead of retrying a full ring many times per
		// message. Context: both wait parked (ReadMsgContext).
		for _, mode := range []string{"Poll", "PollRead", "Context"} {
			b.Run(fmt.Sprintf("%dB/ReadMsg/%s", size, mode), func(b *testing.B) {
				r := newBenchRing(b)
				ctx := context.Background()
				b.SetBytes(int64(size))
				done := make(chan struct{})
				full, empty := 0, 0
				var cpu cpuMeter
				cpu.Start()
				go func() {
					defer close(done)
					buf := make([]byte, size)
					for i := 0; i < b.N; i++ {
						fillMessage(buf, uint64(i))
						if mode != "Poll" {
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
				cpu.Stop()
				cpu.report(b)
				if ns := nsPerMsg(b); chanNs > 0 && ns > 0 {
					b.ReportMetric(chanNs/ns, "vs-chan")
				}
				// How often a side found the ring empty / full, per
				// message. Blocking, a refused write is followed by an
				// arm and maybe a park: the core's FullCount counts them
				// (a ReadMsgContext finding the ring empty is not
				// counted; it parks at most as often as it reads).
				if mode != "Poll" {
					if st, err := r.Stats(); err == nil {
						full = int(st.FullCount)
					}
				}
				b.ReportMetric(float64(full)/float64(b.N), "full/msg")
				if mode != "Context" {
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

// BenchmarkEqualWorkSides: each side of BenchmarkEqualWork alone, in one
// goroutine, so that the cost of each side's work per message can be read
// without a second goroutine competing for the CPUs (on two CPUs, a
// producer/consumer pair runs at the pace of its slower side, plus the
// garbage collector's share). The ring rows write or read runs of
// sideRun messages, the other side's work (draining or refilling the
// ring) done with the timer stopped.
//
//	go test -run '^$' -bench EqualWorkSides -benchtime 200000x
func BenchmarkEqualWorkSides(b *testing.B) {
	const sideRun = 512
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB/Channel/Producer", size), func(b *testing.B) {
			ch := make(chan []byte, 1)
			b.SetBytes(int64(size))
			var cpu cpuMeter
			cpu.Start()
			for i := 0; i < b.N; i++ {
				m := make([]byte, size)
				fillMessage(m, uint64(i))
				ch <- m
				benchSink += len(<-ch) // the receive itself: a channel op, not the consumer's work
			}
			cpu.Stop()
			cpu.report(b)
		})
		b.Run(fmt.Sprintf("%dB/Channel/Consumer", size), func(b *testing.B) {
			m := make([]byte, size)
			fillMessage(m, 7)
			ch := make(chan []byte, 1)
			b.SetBytes(int64(size))
			var cpu cpuMeter
			cpu.Start()
			for i := 0; i < b.N; i++ {
				ch <- m
				if err := checkMessage(<-ch, 7, size); err != nil {
					b.Fatal(err)
				}
			}
			cpu.Stop()
			cpu.report(b)
		})
		b.Run(fmt.Sprintf("%dB/Ring/Producer", size), func(b *testing.B) {
			r := newBenchRing(b)
			buf := make([]byte, size)
			drain := make([]byte, benchRingSize)
			lengths := make([]int, sideRun)
			b.SetBytes(int64(size))
			var cpu cpuMeter
			cpu.Start()
			for i := 0; i < b.N; i++ {
				if i%sideRun == 0 && i > 0 {
					b.StopTimer()
					cpu.Stop()
					for n := 0; n < sideRun; {
						got, err := r.ReadBatchInto(drain, lengths[:sideRun-n])
						if err != nil {
							b.Fatal(err)
						}
						n += got
					}
					cpu.Start()
					b.StartTimer()
				}
				fillMessage(buf, uint64(i))
				if _, err := r.WriteMsg(buf); err != nil {
					b.Fatal(err)
				}
			}
			cpu.Stop()
			cpu.report(b)
		})
		b.Run(fmt.Sprintf("%dB/Ring/Consumer", size), func(b *testing.B) {
			r := newBenchRing(b)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			var cpu cpuMeter
			for i := 0; i < b.N; i++ {
				if i%sideRun == 0 {
					b.StopTimer()
					if i > 0 {
						cpu.Stop()
					}
					for k := i; k < i+sideRun; k++ {
						fillMessage(buf, uint64(k))
						if _, err := r.WriteMsg(buf); err != nil {
							b.Fatal(err)
						}
					}
					cpu.Start()
					b.StartTimer()
				}
				m, err := r.ReadMsg()
				if err != nil {
					b.Fatal(err)
				}
				if err := checkMessage(m, uint64(i), size); err != nil {
					b.Fatal(err)
				}
			}
			cpu.Stop()
			cpu.report(b)
		})
	}
}
