package ringbuffer_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

// The basic example of the original package's README.
func Example() {
	dir, _ := os.MkdirTemp("", "ringbuffer-example")
	defer os.RemoveAll(dir)

	// Create a new ring buffer with 1MB size.
	rb, err := ringbuffer.NewRingBuffer(filepath.Join(dir, "rb.mmap"), 1024*1024, true)
	if err != nil {
		panic(err)
	}
	defer rb.Close()

	// Write a message.
	msg := []byte("hello, mmap ringbuffer!")
	ok, err := rb.WriteMsg(msg)
	if ok && err == nil {
		fmt.Println("Message written successfully")
	}

	// Read a message.
	readMsg, err := rb.ReadMsg()
	if err == nil {
		fmt.Printf("Read message: %s\n", string(readMsg))
	}
	// Output:
	// Message written successfully
	// Read message: hello, mmap ringbuffer!
}

// A producer and a consumer goroutine. Unlike the original README's
// version, the consumer stops once it has every message, and it waits for
// messages instead of spinning.
func Example_producerConsumer() {
	dir, _ := os.MkdirTemp("", "ringbuffer-example")
	defer os.RemoveAll(dir)
	rb, err := ringbuffer.NewRingBuffer(filepath.Join(dir, "rb.mmap"), 4096, true)
	if err != nil {
		panic(err)
	}
	defer rb.Close()

	const count = 1000
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // producer: waits while the ring is full
		defer wg.Done()
		for i := 0; i < count; i++ {
			if err := rb.WriteMsgContext(ctx, []byte(fmt.Sprintf("message-%d", i))); err != nil {
				fmt.Println("write failed:", err)
				return
			}
		}
	}()
	go func() { // consumer: waits while the ring is empty
		defer wg.Done()
		for i := 0; i < count; i++ {
			msg, err := rb.ReadMsgContext(ctx)
			if err != nil {
				fmt.Println("read failed:", err)
				return
			}
			if i < 2 || i == count-1 {
				fmt.Printf("Received: %s\n", msg)
			}
		}
	}()
	wg.Wait()
	// Output:
	// Received: message-0
	// Received: message-1
	// Received: message-999
}

// Errors from opening a ring wrap detail; check them with errors.Is.
func ExampleOpenRingBuffer() {
	_, err := ringbuffer.OpenRingBuffer("/nonexistent/ring.mrb")
	fmt.Println(errors.Is(err, fs.ErrNotExist), errors.Is(err, ringbuffer.ErrIO))
	// Output: true true
}

// ReadMsgInto reuses one buffer; it allocates nothing.
func ExampleRingBuffer_ReadMsgInto() {
	dir, _ := os.MkdirTemp("", "ringbuffer-example")
	defer os.RemoveAll(dir)
	rb, err := ringbuffer.NewRingBuffer(filepath.Join(dir, "rb.mmap"), 4096, true)
	if err != nil {
		panic(err)
	}
	defer rb.Close()

	rb.WriteBatch([][]byte{[]byte("one"), []byte("two")})
	buf := make([]byte, rb.MaxMessageSize())
	for {
		n, err := rb.ReadMsgInto(buf)
		if err != nil {
			break // ErrBufferEmpty: all read
		}
		fmt.Println(string(buf[:n]))
	}
	// Output:
	// one
	// two
}

// A fan-out ring read by two subscribers: a named, durable recorder that
// resumes where it left off, and a lossy tap that never slows the producer.
func ExampleSubscribe() {
	dir, _ := os.MkdirTemp("", "ringbuffer-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "feed.mrb")

	feed, err := ringbuffer.CreateRingBuffer(path, 1<<16, ringbuffer.CreateOptions{FanOut: true})
	if err != nil {
		panic(err)
	}
	defer feed.Close()

	recorder, err := ringbuffer.Subscribe(path, ringbuffer.SubscribeOptions{Name: "recorder"})
	if err != nil {
		panic(err)
	}
	tap, err := ringbuffer.Subscribe(path, ringbuffer.SubscribeOptions{Lossy: true})
	if err != nil {
		panic(err)
	}
	defer tap.Close()

	for _, m := range []string{"tick 1", "tick 2", "tick 3"} {
		feed.WriteMsg([]byte(m))
	}
	msg, _ := recorder.ReadMsgContext(context.Background())
	fmt.Printf("recorder: %s\n", msg)
	recorder.Close() // "recorder" keeps its place; its unread messages wait

	recorder, err = ringbuffer.Subscribe(path, ringbuffer.SubscribeOptions{Name: "recorder"})
	if err != nil {
		panic(err)
	}
	defer recorder.Close()
	msgs, _ := recorder.ReadBatch(10)
	fmt.Printf("recorder again: %s\n", msgs)
	msgs, _ = tap.ReadBatch(10)
	fmt.Printf("tap: %s\n", msgs)

	info, _ := recorder.Info()
	fmt.Println(info.Name, info.MessagesRead, info.LagMessages)
	// Output:
	// recorder: tick 1
	// recorder again: [tick 2 tick 3]
	// tap: [tick 1 tick 2 tick 3]
	// recorder 3 0
}
