module example.com/events

go 1.21

require github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go v0.0.0

replace github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go => ../../../../bindings/go
