// A Go consumer: prints ten events from a ring file.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

func main() {
	path := "/dev/shm/events.ring"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	ring, err := ringbuffer.NewRingBuffer(path, 1<<20, false) // opens it if it exists
	if err != nil {
		log.Fatal(err)
	}
	defer ring.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		msg, err := ring.ReadMsgContext(ctx) // waits for the next event
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(msg))
	}
}
