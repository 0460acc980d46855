package ringbuffer

// Benchmarks: one op is one message, so ns/op compare directly. Each ring
// benchmark has a buffered-channel-of-[]byte baseline in the same run:
//
//	go test -run '^$' -bench . -benchtime 2s
//
// BenchmarkCgoCall measures one Go -> C -> Go crossing (mrb_capacity,
// which does almost nothing), the fixed cost every unbatched call pays.
//
// Every ring row of BenchmarkSingle and BenchmarkProducerConsumer reports
// its throughput against the channel rows of the same size that ran just
// before it in the same run (the same -count round): vs-chan against
// Channel (the sender sends the same preallocated slice every time: no
// allocation, no copy), vs-chancopy against ChannelCopy (the sender copies
// each message into a new slice, as ReadMsg returns one). > 1 means the
// ring row is faster. ReadMsg compares with ChannelCopy; ReadMsgInto and
// the batch calls allocate nothing, like Channel. BenchmarkEqualWork
// (bench_equal_test.go) compares a producer and a consumer that do the same
// work on both sides: fill every message, and read every byte of a slice
// the consumer owns.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

var benchSizes = []int{64, 4096}

const (
	benchRingSize  = 4 << 20
	benchBatch     = 64
	benchChanDepth = 1024
)

// newBenchRing creates the ring on tmpfs (/dev/shm) when there is one, as
// production rings should be: on a disk file system the kernel's writeback
// of the dirty shared pages (and the page faults that re-arm its tracking)
// would be measured too.
func newBenchRing(b *testing.B) *RingBuffer {
	dir := ""
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		dir = "/dev/shm"
	}
	tmp, err := os.MkdirTemp(dir, "mrb-go-bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(tmp) })
	r, err := NewRingBuffer(filepath.Join(tmp, "ring.mrb"), benchRingSize, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// benchSink keeps the compiler from dropping touchLines.
var benchSink int

// touchLines reads one byte of every 64-byte line of m.
func touchLines(m []byte) int {
	s := 0
	for i := 0; i < len(m); i += 64 {
		s += int(m[i])
	}
	return s
}

// chanBaseline holds the ns per message of the channel rows of one size,
// from their last (reported) run, for the ring rows after them.
type chanBaseline struct {
	plain, copying float64
}

// nsPerMsg is the benchmark's ns per message so far (b.N messages).
func nsPerMsg(b *testing.B) float64 {
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// baseline is a channel row's ns per message, or 0 (no ratio) for the
// single-message run the testing package makes of a row that its -bench
// pattern only partly matches (and does not report).
func baseline(b *testing.B) float64 {
	if b.N <= 1 {
		return 0
	}
	return nsPerMsg(b)
}

// report adds the ring row's throughput relative to the channel rows.
func (c *chanBaseline) report(b *testing.B) {
	ns := nsPerMsg(b)
	if ns <= 0 {
		return
	}
	if c.plain > 0 {
		b.ReportMetric(c.plain/ns, "vs-chan")
	}
	if c.copying > 0 {
		b.ReportMetric(c.copying/ns, "vs-chancopy")
	}
}

func benchMessage(size int) []byte {
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i)
	}
	return msg
}

func BenchmarkCgoCall(b *testing.B) {
	r, _ := newTestRing(b, 4096)
	for i := 0; i < b.N; i++ {
		r.Capacity()
	}
}

// Single goroutine: write one message, read it back.
func BenchmarkSingle(b *testing.B) {
	for _, size := range benchSizes {
		msg := benchMessage(size)
		var base chanBaseline
		b.Run(fmt.Sprintf("%dB/Channel", size), func(b *testing.B) {
			ch := make(chan []byte, benchChanDepth)
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				ch <- msg
				<-ch
			}
			b.StopTimer()
			base.plain = baseline(b)
		})
		b.Run(fmt.Sprintf("%dB/ChannelCopy", size), func(b *testing.B) {
			ch := make(chan []byte, benchChanDepth)
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				m := make([]byte, len(msg))
				copy(m, msg)
				ch <- m
				benchSink += len(<-ch)
			}
			b.StopTimer()
			base.copying = baseline(b)
		})
		b.Run(fmt.Sprintf("%dB/WriteMsg+ReadMsg", size), func(b *testing.B) {
			r := newBenchRing(b)
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if _, err := r.WriteMsg(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := r.ReadMsg(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			base.report(b)
		})
		b.Run(fmt.Sprintf("%dB/WriteMsg+ReadMsgInto", size), func(b *testing.B) {
			r := newBenchRing(b)
			dst := make([]byte, size)
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if _, err := r.WriteMsg(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := r.ReadMsgInto(dst); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			base.report(b)
		})
		b.Run(fmt.Sprintf("%dB/Batch%d", size, benchBatch), func(b *testing.B) {
			r := newBenchRing(b)
			batch := make([][]byte, benchBatch)
			for i := range batch {
				batch[i] = msg
			}
			buf := make([]byte, benchBatch*size)
			lengths := make([]int, benchBatch)
			b.SetBytes(int64(size))
			for done := 0; done < b.N; {
				n := benchBatch
				if b.N-done < n {
					n = b.N - done
				}
				if w, err := r.WriteBatch(batch[:n]); w != n || err != nil {
					b.Fatal(w, err)
				}
				for read := 0; read < n; {
					got, err := r.ReadBatchInto(buf, lengths[:n-read])
					if err != nil {
						b.Fatal(err)
					}
					read += got
				}
				done += n
			}
			b.StopTimer()
			base.report(b)
		})
	}
}

// A producer goroutine and a consumer goroutine.
func BenchmarkProducerConsumer(b *testing.B) {
	for _, size := range benchSizes {
		msg := benchMessage(size)
		var base, touchBase chanBaseline
		b.Run(fmt.Sprintf("%dB/Channel", size), func(b *testing.B) {
			ch := make(chan []byte, benchChanDepth)
			b.SetBytes(int64(size))
			go func() {
				for i := 0; i < b.N; i++ {
					ch <- msg
				}
			}()
			for i := 0; i < b.N; i++ {
				<-ch
			}
			b.StopTimer()
			base.plain = baseline(b)
			touchBase.plain = base.plain
		})
		// A channel of messages the receiver owns, as ReadMsg returns them:
		// the sender copies each into a new slice (it may reuse its own).
		// With /Touch the receiver reads a byte of every cache line of each
		// message, as a consumer that uses the data does: a channel hands
		// over a pointer, so the bytes cross between cores only then,
		// while ReadMsg has moved them already.
		for _, touch := range []bool{false, true} {
			name := fmt.Sprintf("%dB/ChannelCopy", size)
			if touch {
				name += "/Touch"
			}
			b.Run(name, func(b *testing.B) {
				ch := make(chan []byte, benchChanDepth)
				b.SetBytes(int64(size))
				go func() {
					for i := 0; i < b.N; i++ {
						m := make([]byte, len(msg))
						copy(m, msg)
						ch <- m
					}
				}()
				sum := 0
				for i := 0; i < b.N; i++ {
					m := <-ch
					if touch {
						sum += touchLines(m)
					}
				}
				benchSink = sum
				b.StopTimer()
				if touch {
					touchBase.copying = baseline(b)
				} else {
					base.copying = baseline(b)
				}
			})
		}
		// ReadMsg: the consumer gets a new slice per message, polling.
		// vs-chancopy compares /Touch with ChannelCopy/Touch.
		for _, touch := range []bool{false, true} {
			name := fmt.Sprintf("%dB/Msg/ReadMsg", size)
			rowBase := &base
			if touch {
				name += "/Touch"
				rowBase = &touchBase
			}
			b.Run(name, func(b *testing.B) {
				r := newBenchRing(b)
				b.SetBytes(int64(size))
				full := make(chan int, 1)
				go func() {
					n := 0
					for i := 0; i < b.N; {
						if _, err := r.WriteMsg(msg); err == nil {
							i++
						} else if err == ErrBufferFull {
							n++
							runtime.Gosched()
						} else {
							panic(err)
						}
					}
					full <- n
				}()
				empty, sum := 0, 0
				for i := 0; i < b.N; {
					if m, err := r.ReadMsg(); err == nil {
						i++
						if touch {
							sum += touchLines(m)
						}
					} else if err == ErrBufferEmpty {
						empty++
						runtime.Gosched()
					} else {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				benchSink = sum
				rowBase.report(b)
				b.ReportMetric(float64(empty)/float64(b.N), "empty/msg")
				b.ReportMetric(float64(<-full)/float64(b.N), "full/msg")
			})
		}
		// The drop-in way: non-blocking calls, yielding while full or empty.
		b.Run(fmt.Sprintf("%dB/Msg/Poll", size), func(b *testing.B) {
			r := newBenchRing(b)
			dst := make([]byte, size)
			b.SetBytes(int64(size))
			go func() {
				for i := 0; i < b.N; {
					if _, err := r.WriteMsg(msg); err == nil {
						i++
					} else if err == ErrBufferFull {
						runtime.Gosched()
					} else {
						panic(err)
					}
				}
			}()
			for i := 0; i < b.N; {
				if _, err := r.ReadMsgInto(dst); err == nil {
					i++
				} else if err == ErrBufferEmpty {
					runtime.Gosched()
				} else {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			base.report(b)
		})
		b.Run(fmt.Sprintf("%dB/Msg/Context", size), func(b *testing.B) {
			r, ctx := blockingProducer(b, msg)
			for i := 0; i < b.N; i++ {
				if _, err := r.ReadMsgContext(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			base.report(b)
		})
		// The same with the consumer's allocation-free blocking read.
		b.Run(fmt.Sprintf("%dB/Msg/ContextInto", size), func(b *testing.B) {
			r, ctx := blockingProducer(b, msg)
			dst := make([]byte, size)
			for i := 0; i < b.N; i++ {
				if _, err := r.ReadMsgIntoContext(ctx, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			base.report(b)
		})
		for _, consumer := range []string{"Poll", "Backoff", "Context"} {
			b.Run(fmt.Sprintf("%dB/Batch%d/%s", size, benchBatch, consumer), func(b *testing.B) {
				benchBatchProducerConsumer(b, msg, consumer)
				b.StopTimer()
				base.report(b)
			})
		}
	}
}

// blockingProducer starts a goroutine writing b.N copies of msg with
// WriteMsgContext into a new ring, for a blocking consumer to read.
func blockingProducer(b *testing.B, msg []byte) (*RingBuffer, context.Context) {
	r := newBenchRing(b)
	ctx := context.Background()
	b.SetBytes(int64(len(msg)))
	go func() {
		for i := 0; i < b.N; i++ {
			if err := r.WriteMsgContext(ctx, msg); err != nil {
				panic(err)
			}
		}
	}()
	return r, ctx
}

// benchBatchProducerConsumer: the producer writes batches, yielding while the
// ring is full; the consumer reads batches and, while the ring is empty,
// polls (yielding), backs off (sleeping, so batches build up and the
// producer's cache lines are left alone), or blocks (ReadBatchContext).
func benchBatchProducerConsumer(b *testing.B, msg []byte, consumer string) {
	r := newBenchRing(b)
	batch := make([][]byte, benchBatch)
	for i := range batch {
		batch[i] = msg
	}
	buf := make([]byte, benchBatch*len(msg))
	lengths := make([]int, benchBatch)
	ctx := context.Background()
	b.SetBytes(int64(len(msg)))
	go func() {
		for done := 0; done < b.N; {
			n := benchBatch
			if b.N-done < n {
				n = b.N - done
			}
			w, err := r.WriteBatch(batch[:n])
			done += w
			if err == ErrBufferFull {
				runtime.Gosched()
			} else if err != nil {
				panic(err)
			}
		}
	}()
	for read := 0; read < b.N; {
		var got int
		var err error
		if consumer == "Context" {
			got, err = r.ReadBatchContext(ctx, buf, lengths)
		} else {
			got, err = r.ReadBatchInto(buf, lengths)
		}
		if err == ErrBufferEmpty {
			if consumer == "Backoff" {
				time.Sleep(time.Microsecond)
			} else {
				runtime.Gosched()
			}
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		read += got
	}
}
