module github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go

go 1.21
